"""The training parameters a trial may set, their defaults, and the optimizer and learning-rate schedule they
describe. Names are the conventional ones documented in docs/nlp.md."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from lmtune.exceptions import ConfigError

__all__ = ["Hyperparameters", "apply_to_optimizer", "lr_factor", "make_optimizer"]

OPTIMIZERS = ("adamw", "adam", "sgd", "adagrad")
SCHEDULES = ("linear", "cosine", "exponential", "constant")
CURRICULA = ("none", "shortest", "easiest", "first_model")
_NO_DECAY = ("bias", "norm", "layernorm", "layer_norm", "ln_")


@dataclass(frozen=True)
class Hyperparameters:
    """Resolved training parameters; units: learning rate per step, ``warmup_steps`` in optimizer steps."""

    learning_rate: float = 5e-5
    batch_size: int = 32
    epochs: int = 3
    max_steps: int | None = None
    optimizer: str = "adamw"
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    adagrad_lr_decay: float = 0.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    warmup_steps: int | None = None
    lr_schedule: str = "linear"
    lr_decay_rate: float = 0.01
    dropout: float | None = None
    max_length: int | None = None
    finetune: str = "full"
    lora_r: int = 8
    lora_alpha: float | None = None
    lora_dropout: float = 0.05
    lora_target_modules: Any = None
    num_layers: int = 2
    hidden_size: int = 128
    num_heads: int = 4
    ffn_size: int | None = None
    grad_clip: float | None = 1.0
    gradient_checkpointing: bool = False
    curriculum: str = "none"
    group_by_length: bool = True
    seed: int = 0
    label_smoothing: float = 0.0

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Hyperparameters:
        """Build from ``{**task.training, **trial.params}``; unknown names are ignored (a user's objective may
        search other things), bad values raise ConfigError naming the parameter."""
        known = {f.name for f in fields(cls)}
        hp = cls(**{k: v for k, v in params.items() if k in known})
        hp._check()
        return hp

    def _check(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ConfigError(f"parameter {name}: {getattr(self, name)!r} is not allowed; use {allowed}")

        need(self.learning_rate > 0, "learning_rate", "a positive number")
        need(int(self.batch_size) >= 1, "batch_size", "an integer >= 1")
        need(int(self.epochs) >= 1, "epochs", "an integer >= 1")
        need(self.max_steps is None or int(self.max_steps) >= 1, "max_steps", "an integer >= 1 or null")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"one of {list(OPTIMIZERS)}")
        need(self.lr_schedule in SCHEDULES, "lr_schedule", f"one of {list(SCHEDULES)}")
        need(self.curriculum in CURRICULA, "curriculum", f"one of {list(CURRICULA)}")
        need(self.finetune in ("full", "lora"), "finetune", "full or lora")
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "a fraction in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "a number >= 0")
        need(self.dropout is None or 0 <= self.dropout < 1, "dropout", "a probability in [0, 1)")
        need(0 < self.lr_decay_rate <= 1, "lr_decay_rate", "a fraction in (0, 1]")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "a positive number or null")

    def total_steps(self, batches_per_epoch: int) -> int:
        """Optimizer steps of the whole run: ``epochs`` epochs, capped by ``max_steps``."""
        total = int(self.epochs) * batches_per_epoch
        return min(total, int(self.max_steps)) if self.max_steps is not None else total

    def warmup(self, total_steps: int) -> int:
        if self.warmup_steps is not None:
            return int(self.warmup_steps)
        return int(round(self.warmup_ratio * total_steps))


def lr_factor(
    step: int, total_steps: int, warmup_steps: int, schedule: str, decay_rate: float = 0.01
) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``, then: ``linear`` to 0, ``cosine`` to 0, ``exponential`` to
    ``decay_rate`` of the base at the last step, or ``constant``.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / span, 1.0)
    if schedule == "linear":
        return max(1.0 - progress, 0.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "exponential":
        return decay_rate**progress
    return 1.0


def _decays(name: str, param: torch.nn.Parameter) -> bool:
    """Weight decay applies to weight matrices, not to biases, norms or other vectors."""
    return param.ndim >= 2 and not any(key in name.lower() for key in _NO_DECAY)


def make_optimizer(model: torch.nn.Module, hp: Hyperparameters) -> torch.optim.Optimizer:
    """The optimizer named by ``hp.optimizer`` over the trainable parameters, with two groups (decayed or not)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if _decays(n, p)], "lmtune_decay": True},
        {"params": [p for n, p in named if not _decays(n, p)], "lmtune_decay": False},
    ]
    groups = [g for g in groups if g["params"]]
    lr = float(hp.learning_rate)
    optimizer: torch.optim.Optimizer
    if hp.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=lr, betas=(hp.beta1, hp.beta2), eps=hp.eps)
    elif hp.optimizer == "adam":
        optimizer = torch.optim.Adam(groups, lr=lr, betas=(hp.beta1, hp.beta2), eps=hp.eps)
    elif hp.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=hp.momentum, nesterov=bool(hp.nesterov))
    else:
        optimizer = torch.optim.Adagrad(groups, lr=lr, lr_decay=hp.adagrad_lr_decay, eps=hp.eps)
    apply_to_optimizer(optimizer, hp)
    return optimizer


def apply_to_optimizer(optimizer: torch.optim.Optimizer, hp: Hyperparameters) -> None:
    """Set the trial's learning rate, weight decay and momentum on every group; used after loading an
    optimizer state, so a resumed trial trains with its own (possibly changed) hyperparameters."""
    for group in optimizer.param_groups:
        group["base_lr"] = float(hp.learning_rate)
        group["lr"] = float(hp.learning_rate)
        group["weight_decay"] = float(hp.weight_decay) if group.get("lmtune_decay") else 0.0
        if "betas" in group:
            group["betas"] = (hp.beta1, hp.beta2)
        if "momentum" in group:
            group["momentum"] = hp.momentum
            group["nesterov"] = bool(hp.nesterov) and hp.momentum > 0
