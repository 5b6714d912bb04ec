"""An attention implementation that runs under ``torch.func.vmap`` and applies each trial's own dropout.

Hugging Face picks the attention function and the mask builder by ``config._attn_implementation``. The built-in
``sdpa`` mask builder skips the mask when no token is padded, a data-dependent test that ``vmap`` cannot trace, and
attention dropout draws from the global generator. The implementation registered here always materialises a
boolean mask and applies the attention dropout through the layer's :class:`KeyedDropout`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from lmtune.exceptions import LmtuneError
from lmtune.nlp.fused.dropout import KeyedDropout

__all__ = ["FUSED_ATTENTION", "use_fused_attention"]

FUSED_ATTENTION = "lmtune_fused"
_DROPOUT_CHILDREN = ("attn_dropout", "attention_dropout", "dropout")


def _mask(*args: Any, **kwargs: Any) -> torch.Tensor | None:
    kwargs["allow_is_causal_skip"] = False
    kwargs["allow_is_bidirectional_skip"] = False
    return sdpa_mask(*args, **kwargs)


def _attention_dropout(module: nn.Module) -> KeyedDropout | None:
    for name in _DROPOUT_CHILDREN:
        child = getattr(module, name, None)
        if isinstance(child, KeyedDropout):
            return child
    return None


def _attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Scaled dot-product attention; returns ``[batch, length, heads, head_dim]`` as Hugging Face expects."""
    if key.shape[1] != query.shape[1]:  # grouped-query attention: repeat the key/value heads
        repeat = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeat, dim=1), value.repeat_interleave(repeat, dim=1)
    keyed = _attention_dropout(module)
    if module.training and dropout > 0 and keyed is None:
        raise LmtuneError(
            f"{type(module).__name__} applies attention dropout without a dropout layer; "
            f"set the model's attention dropout to 0 to fuse its trials"
        )
    # Plain matrix products: vmap batches them natively, while it runs fused SDPA kernels one member at a time.
    scores = torch.matmul(query, key.transpose(-1, -2)) * (scaling or query.shape[-1] ** -0.5)
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if keyed is not None:
        weights = keyed(weights)
    out = torch.matmul(weights, value)
    return out.transpose(1, 2).contiguous(), None


def use_fused_attention(model: nn.Module) -> None:
    """Register the implementation (once per process) and switch ``model`` to it."""
    if FUSED_ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionInterface.register(FUSED_ATTENTION, _attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(FUSED_ATTENTION, _mask)
    config = getattr(model, "config", None)
    if config is None:
        raise LmtuneError(
            f"{type(model).__name__} has no Hugging Face config; only transformers models can be fused"
        )
    config._attn_implementation = FUSED_ATTENTION
