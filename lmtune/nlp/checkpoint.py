"""What a training run writes into its trial's checkpoint folder: ``last/`` (weights, optimizer, progress, RNG:
enough to resume exactly) and ``best/`` (the weights of the best evaluation, which the final model is saved from).
Which folders stay on disk is :mod:`lmtune.checkpoints`' business.

Tensors are written with ``torch.save`` and read back with ``weights_only=True`` (no code runs on load); progress
and parameters are JSON. Each folder is written beside its final name and renamed, so a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import errno
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lmtune.exceptions import LmtuneError

__all__ = ["BEST", "LAST", "Progress", "load_checkpoint", "read_json", "save_checkpoint"]

LAST = "last"
BEST = "best"
_NEARLY_FULL = 64 * 1024  # free bytes below which a failed write is put down to a full disk


@dataclass
class Progress:
    """Where training stands. ``step`` counts optimizer steps; ``epoch`` finished epochs; ``batch`` the batches
    done in the current epoch; ``best_value`` the best validation metric so far, at report step ``best_step``."""

    epoch: int = 0
    step: int = 0
    batch: int = 0
    report_step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    best_metrics: dict[str, float] = field(default_factory=dict)


def save_checkpoint(folder: Path, *, tensors: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``tensors`` (``torch.save``) and ``meta`` (JSON) into ``folder``, replacing it atomically."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        torch.save(tensors, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    except (OSError, RuntimeError) as exc:  # torch reports a failed write as RuntimeError
        reason = _reason(exc, folder.parent)
        shutil.rmtree(tmp, ignore_errors=True)  # no partial checkpoint stays behind
        raise LmtuneError(
            f"the checkpoint {str(folder)!r} could not be written ({reason}); free disk space, or keep "
            f"fewer checkpoints with `checkpoints: {{keep_best: 1, max_bytes: ...}}`"
        ) from None
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _reason(exc: BaseException, folder: Path) -> str:
    """Why a write failed, in words: a full disk (which torch reports only as a failed write), or the error."""
    if getattr(exc, "errno", None) == errno.ENOSPC or shutil.disk_usage(folder).free < _NEARLY_FULL:
        return "no space left on the disk"
    if getattr(exc, "strerror", None):
        return str(exc.strerror)  # type: ignore[attr-defined]
    lines = str(exc).splitlines()
    return lines[0] if lines else type(exc).__name__


def load_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensors, meta) of a folder written by :func:`save_checkpoint`."""
    tensors = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    return tensors, read_json(folder / "meta.json")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
