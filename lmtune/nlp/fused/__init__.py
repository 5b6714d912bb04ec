"""Fused multi-trial training: trials of one architecture trained in one process as one batched model.

:class:`FusedModel` is the engine (stacked parameters through ``torch.func``, one optimizer step for all members),
:class:`FusedGroup` runs lmtune trials on it with each trial's own data order, schedule, reports and checkpoints,
and :func:`fuse_key` says which trials can share a group (or why one cannot).
"""

from __future__ import annotations

from lmtune.nlp.fused.dropout import install_keyed_dropout
from lmtune.nlp.fused.engine import FusedModel, Member, stack_batches
from lmtune.nlp.fused.group import FusedGroup, MemberResult, fuse_key, member_of
from lmtune.nlp.fused.optim import FUSABLE_OPTIMIZERS, FlatOptimizer, MemberOptimizer

__all__ = [
    "FUSABLE_OPTIMIZERS",
    "FlatOptimizer",
    "FusedGroup",
    "FusedModel",
    "Member",
    "MemberOptimizer",
    "MemberResult",
    "fuse_key",
    "install_keyed_dropout",
    "member_of",
    "stack_batches",
]
