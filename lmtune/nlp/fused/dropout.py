"""Dropout whose masks are a pure function of (trial seed, optimizer step, layer, position).

Fused members must each draw their own masks at their own rate, and a member must draw the same masks whether it
trains in a group, alone, or after resuming from a checkpoint. Masks taken from a shared random generator can do
neither, so :class:`KeyedDropout` hashes a counter instead: its per-trial inputs (rate, seed, step) are buffers of one
:class:`DropoutKey` module, which the fused engine stacks like any other buffer. Under ``torch.func.vmap`` every
member therefore sees its own scalars, and no random generator is touched at all.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["DropoutKey", "KeyedDropout", "install_keyed_dropout", "keyed_uniform"]

KEY_NAME = "lmtune_dropout_key"
_MASK32 = 0xFFFFFFFF
_AXIS_FACTORS = (
    0x9E3779B1,
    0x85EBCA77,
    0xC2B2AE3D,
    0x27D4EB2F,
    0x165667B1,
    0xD3A2646D,
)  # odd 32-bit constants


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) on int64 tensors holding values below 2**32."""
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def keyed_uniform(
    shape: torch.Size, seed: torch.Tensor, step: torch.Tensor, layer: int, device: torch.device
) -> torch.Tensor:
    """Uniform numbers in [0, 1) of ``shape`` (float32, 24 random bits), determined by seed, step and layer.

    Each element's number depends on its coordinates, not on the tensor's size, so padding a batch (more rows,
    longer sequences) leaves the numbers of the real elements unchanged.
    """
    key = _mix32((seed.long() & _MASK32) ^ 0x9E3779B9)
    key = _mix32((key + step.long() * 0x27D4EB2F) & _MASK32)
    key = _mix32((key + layer * 0x165667B1) & _MASK32)
    if len(shape) > len(_AXIS_FACTORS):
        raise ValueError(
            f"keyed dropout supports tensors of up to {len(_AXIS_FACTORS)} dimensions, not {len(shape)}"
        )
    index = torch.zeros((), dtype=torch.int64, device=device)
    for axis, (size, factor) in enumerate(zip(shape, _AXIS_FACTORS, strict=False)):
        view = [1] * len(shape)
        view[axis] = size
        index = index + torch.arange(size, device=device, dtype=torch.int64).view(view) * factor
    bits = _mix32((index + key) & _MASK32)
    return (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))


class DropoutKey(nn.Module):
    """The per-trial inputs of every :class:`KeyedDropout` of a model, registered once on its root.

    ``rate`` is the trial's dropout probability (NaN: keep each layer's own configured rate), ``seed`` its seed
    and ``step`` its optimizer step, which the training loop advances so each step draws fresh masks.
    """

    def __init__(self, rate: float | None, seed: int) -> None:
        super().__init__()
        self.register_buffer("rate", torch.tensor(math.nan if rate is None else float(rate)))
        self.register_buffer("seed", torch.tensor(int(seed) & _MASK32, dtype=torch.int64))
        self.register_buffer("step", torch.tensor(0, dtype=torch.int64))
        self.active = True  # False when every trial of a group has rate 0: dropout is skipped entirely


class KeyedDropout(nn.Module):
    """Drop-in replacement of ``nn.Dropout`` reading its rate, seed and step from a shared :class:`DropoutKey`.

    ``p`` keeps the layer's configured rate, which models read as a Python float (attention dropout) and which
    applies when the trial sets no rate of its own.
    """

    def __init__(self, p: float, layer: int, key: DropoutKey) -> None:
        super().__init__()
        self.p = float(p)
        self.layer = layer
        object.__setattr__(self, "_key", key)  # a reference, not a submodule: the root owns the buffers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key: DropoutKey = self._key  # type: ignore[assignment]
        if not self.training or not key.active:
            return x
        rate = torch.where(torch.isnan(key.rate), torch.full_like(key.rate, self.p), key.rate)
        keep = keyed_uniform(x.shape, key.seed, key.step, self.layer, x.device) >= rate
        return x * keep.to(x.dtype) / (1.0 - rate).to(x.dtype)


def install_keyed_dropout(model: nn.Module, rate: float | None, seed: int) -> DropoutKey:
    """Replace every ``nn.Dropout`` of ``model`` by a :class:`KeyedDropout` and register their :class:`DropoutKey`.

    Layers are numbered in module order, so two models of one architecture number them alike.
    """
    key = DropoutKey(rate, seed)
    targets = [(name, module) for name, module in model.named_modules() if isinstance(module, nn.Dropout)]
    for layer, (name, module) in enumerate(targets):
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, KeyedDropout(module.p, layer, key))
    model.add_module(KEY_NAME, key)
    return key
