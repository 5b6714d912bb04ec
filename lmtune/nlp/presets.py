"""Search-space presets for fine-tuning and training language models, with priors from published practice.

Each preset is a study-file ``space:`` mapping; a study file names one with ``preset: NAME`` and overrides single
parameters under ``space:``. Sources of the ranges and priors:

- ``encoder-finetune``: BERT's fine-tuning grid (Devlin et al. 2019: learning rate 2e-5..5e-5, batch 16/32,
  2-4 epochs) widened as in RoBERTa (Liu et al. 2019: warm-up 6%, weight decay 0.1) and Mosbach et al. 2021.
- ``causal-lm-finetune``: LoRA practice (Hu et al. 2021; QLoRA, Dettmers et al. 2023: rank 8-64, alpha 16,
  dropout 0.05-0.1, learning rate ~2e-4 with cosine decay and short warm-up), full fine-tuning at ~2e-5.
- ``lm-from-scratch``: small GPT-2-style models (Radford et al. 2019; nanoGPT's character-level Shakespeare
  settings: 4-6 layers, width 128-384, learning rate ~1e-3, dropout 0.1-0.2, AdamW with weight decay 0.1).
- ``seq2seq``: the small Transformer recipes for Multi30k / IWSLT (Vaswani et al. 2017: label smoothing 0.1,
  dropout 0.1-0.3, warm-up; learning rate ~5e-4 with AdamW).
"""

from __future__ import annotations

import copy
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = ["PRESETS", "get_preset"]


def _float(
    low: float, high: float, prior: float, confidence: float = 0.5, log: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "float",
        "low": low,
        "high": high,
        "prior": {"value": prior, "confidence": confidence},
    }
    if log:
        spec["log"] = True
    return spec


def _int(low: int, high: int, prior: int, confidence: float = 0.5) -> dict[str, Any]:
    return {"type": "int", "low": low, "high": high, "prior": {"value": prior, "confidence": confidence}}


def _choice(choices: list[Any], prior: Any, confidence: float = 0.5) -> dict[str, Any]:
    return {"type": "categorical", "choices": choices, "prior": {"value": prior, "confidence": confidence}}


def _when(spec: dict[str, Any], **parents: Any) -> dict[str, Any]:
    return {**spec, "when": {name: list(values) for name, values in parents.items()}}


PRESETS: dict[str, dict[str, Any]] = {
    "encoder-finetune": {
        "learning_rate": _float(1e-5, 1e-4, 3e-5, log=True),
        "batch_size": _choice([16, 32, 64], 32),
        "epochs": _int(2, 5, 3),
        "weight_decay": _float(0.0, 0.1, 0.01),
        "warmup_ratio": _float(0.0, 0.1, 0.06),
        "dropout": _float(0.1, 0.5, 0.1, confidence=0.6),
        "lr_schedule": _choice(["linear", "cosine"], "linear"),
    },
    "causal-lm-finetune": {
        "finetune": _choice(["lora", "full"], "lora", confidence=0.7),
        "learning_rate": _float(1e-5, 1e-3, 2e-4, log=True),
        "lora_r": _when(_choice([4, 8, 16, 32], 16), finetune=["lora"]),
        "lora_alpha": _when(_choice([8, 16, 32, 64], 16), finetune=["lora"]),
        "lora_dropout": _when(_float(0.0, 0.1, 0.05), finetune=["lora"]),
        "batch_size": _choice([8, 16, 32], 16),
        "epochs": _int(1, 3, 1),
        "weight_decay": _float(0.0, 0.1, 0.0),
        "warmup_ratio": _float(0.0, 0.1, 0.03),
        "lr_schedule": _choice(["cosine", "linear", "constant"], "cosine"),
    },
    "lm-from-scratch": {
        "num_layers": _int(2, 6, 4),
        "hidden_size": _choice([64, 128, 256], 128),
        "num_heads": _choice([2, 4, 8], 4),
        "learning_rate": _float(1e-4, 3e-3, 1e-3, log=True),
        "batch_size": _choice([16, 32, 64], 32),
        "epochs": _int(1, 10, 3),
        "dropout": _float(0.0, 0.3, 0.1),
        "optimizer": _choice(["adamw", "adam", "sgd", "adagrad"], "adamw", confidence=0.7),
        "momentum": _when(_float(0.8, 0.99, 0.9), optimizer=["sgd"]),
        "weight_decay": _float(0.0, 0.1, 0.1),
        "warmup_ratio": _float(0.0, 0.1, 0.05),
        "lr_schedule": _choice(["cosine", "linear", "exponential", "constant"], "cosine"),
    },
    "seq2seq": {
        "num_layers": _int(2, 4, 3),
        "hidden_size": _choice([128, 256], 256),
        "num_heads": _choice([4, 8], 4),
        "learning_rate": _float(1e-4, 2e-3, 5e-4, log=True),
        "batch_size": _choice([32, 64], 32),
        "epochs": _int(2, 10, 5),
        "dropout": _float(0.1, 0.3, 0.1),
        "label_smoothing": _float(0.0, 0.2, 0.1),
        "weight_decay": _float(0.0, 0.1, 0.01),
        "warmup_ratio": _float(0.0, 0.1, 0.05),
        "lr_schedule": _choice(["linear", "cosine", "exponential"], "linear"),
    },
}


def get_preset(name: str) -> dict[str, Any]:
    """A fresh copy of the preset ``name`` in study-file form; ConfigError lists the names when unknown."""
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r}; use one of {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
