"""Parameter-efficient fine-tuning: LoRA adapters through ``peft``, with rank, alpha, dropout and targets as
hyperparameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmtune.exceptions import ConfigError

__all__ = ["apply_lora", "lora_targets", "merge_lora", "trainable_state"]

# The attention projections LoRA adapts by default, per model family (the common choice in the LoRA paper).
ATTENTION_MODULES = {
    "bert": ["query", "value"],
    "gpt2": ["c_attn"],
    "llama": ["q_proj", "v_proj"],
    "bart": ["q_proj", "v_proj"],
    "t5": ["q", "v"],
}
_TASK_TYPES = {"classification": "SEQ_CLS", "causal-lm": "CAUSAL_LM", "translation": "SEQ_2_SEQ_LM"}


def lora_targets(model_type: str, value: Any) -> str | list[str]:
    """Target modules from the ``lora_target_modules`` parameter: ``attention`` (the default: the family's
    attention projections), ``all-linear``, a comma-separated string or a list of module names."""
    if value is None or value == "attention":
        if model_type not in ATTENTION_MODULES:
            raise ConfigError(
                f"lora_target_modules: no default for model type {model_type!r}; list the module "
                f"names, e.g. [q_proj, v_proj], or use all-linear"
            )
        return list(ATTENTION_MODULES[model_type])
    if value == "all-linear":
        return "all-linear"
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(
        f"lora_target_modules must be attention, all-linear or a list of module names, but got {value!r}"
    )


def apply_lora(model: torch.nn.Module, task_type: str, params: Mapping[str, Any]) -> torch.nn.Module:
    """Wrap ``model`` with LoRA adapters; only the adapters (and a classification head) are trained."""
    from peft import LoraConfig, get_peft_model

    r = int(params.get("lora_r", 8))
    config = LoraConfig(
        r=r,
        lora_alpha=float(params.get("lora_alpha") or 2 * r),
        lora_dropout=float(params.get("lora_dropout", 0.05)),
        target_modules=lora_targets(model.config.model_type, params.get("lora_target_modules")),
        task_type=_TASK_TYPES[task_type],
    )
    return get_peft_model(model, config)


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model with the adapters folded into its weights (what ``save_pretrained`` should write)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint must keep: all of them for full fine-tuning, only the trained ones for LoRA
    (the frozen base is rebuilt from its source)."""
    named = dict(model.named_parameters())
    if all(p.requires_grad for p in named.values()):
        return model.state_dict()
    return {name: p.detach() for name, p in named.items() if p.requires_grad}
