"""Fine-tuning-like functions mixing log-scaled floats and categoricals, with interactions between them.

Each is a smooth surrogate of how a fine-tuning loss responds to its settings: the best learning rate depends on the
optimizer and the batch size, weight decay matters on a log scale, and each categorical has a cost of its own. They
are benchmark functions only (the test suite does not use them), so a sampler tuned to the tests gains nothing here.

* ``finetune8``: 8 parameters (4 log-scaled floats, 2 linear floats, 2 categoricals of 4 and 3 choices);
* ``lora6``: 6 parameters (3 log-scaled floats, 1 linear float, 2 two-choice categoricals).

Both have minimum 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["FINETUNE8_SPACE", "LORA6_SPACE", "finetune8_value", "lora6_value"]

FINETUNE8_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True},
    "adam_eps": {"type": "float", "low": 1e-10, "high": 1e-4, "log": True},
    "max_grad_norm": {"type": "float", "low": 0.05, "high": 20.0, "log": True},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.3},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "batch_size": {"type": "categorical", "choices": [8, 16, 32, 64]},
    "optimizer": {"type": "categorical", "choices": ["adamw", "sgd", "adafactor"]},
}
_BEST_LOG_LR = {"adamw": -4.0, "sgd": -2.0, "adafactor": -3.0}
_BEST_LOG_WD = {"adamw": -2.0, "sgd": -4.0, "adafactor": -3.0}
_OPTIMIZER_COST = {"adamw": 0.0, "sgd": 0.6, "adafactor": 0.3}
_BATCH_COST = {8: 0.4, 16: 0.1, 32: 0.0, 64: 0.2}


def finetune8_value(p: Mapping[str, Any]) -> float:
    """Minimum 0 at adamw, batch 32, lr 1e-4, weight decay 1e-2, eps 1e-8, grad norm 1, warmup 0.1, dropout 0.1."""
    optimizer, batch = p["optimizer"], int(p["batch_size"])
    best_lr = _BEST_LOG_LR[optimizer] + 0.5 * math.log2(batch / 32)  # larger batches take larger steps
    lr_gap = math.log10(p["lr"]) - best_lr
    eps_term = 0.05 * (math.log10(p["adam_eps"]) + 8.0) ** 2 if optimizer != "sgd" else 0.0
    return (
        lr_gap**2
        + 0.3 * (math.log10(p["weight_decay"]) - _BEST_LOG_WD[optimizer]) ** 2
        + eps_term
        + 0.2
        * math.log10(p["max_grad_norm"]) ** 2
        * (1.0 + max(lr_gap, 0.0))  # clipping matters more when lr is high
        + 8.0 * (p["warmup_ratio"] - 0.1) ** 2
        + 6.0 * (p["dropout"] - 0.1) ** 2
        + _OPTIMIZER_COST[optimizer]
        + _BATCH_COST[batch]
    )


LORA6_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True},
    "alpha_over_rank": {"type": "float", "low": 0.25, "high": 8.0, "log": True},
    "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "lora_dropout": {"type": "float", "low": 0.0, "high": 0.3},
    "scheduler": {"type": "categorical", "choices": ["linear", "cosine"]},
    "rslora": {"type": "categorical", "choices": [False, True]},
}


def lora6_value(p: Mapping[str, Any]) -> float:
    """Minimum 0 at cosine, rslora, alpha_over_rank 2, lr 10 ** -3.5, weight decay 1e-3 and dropout 0.05; the
    effective step is lr times the LoRA scaling, so lr and alpha trade off along a ridge."""
    scale = math.sqrt(p["alpha_over_rank"]) if p["rslora"] else p["alpha_over_rank"]
    step_gap = math.log10(p["lr"] * scale) - (-3.5 + 0.5 * math.log10(2.0))
    return (
        step_gap**2
        + 0.5 * (math.log2(p["alpha_over_rank"]) - 1.0) ** 2 / 4.0
        + 0.2 * (math.log10(p["weight_decay"]) + 3.0) ** 2
        + 10.0 * (p["lora_dropout"] - 0.05) ** 2
        + (0.0 if p["scheduler"] == "cosine" else 0.15)
        + (0.0 if p["rslora"] else 0.1)
    )
