"""Checks shared by the checkpoint-budget tests of every executor (a module of its own, not conftest: several
test folders have a conftest, and `from conftest import` picks whichever was imported first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def checkpoint_folder_sizes(study: Any) -> dict[str, int]:
    """Bytes on disk in each trial checkpoint folder under the study's checkpoint root, by folder name."""
    from lmtune.checkpoints import directory_size

    return {p.name: directory_size(p) for p in Path(study.checkpoint_root).glob("trial_*")}


def assert_checkpoints_within_budget(study: Any, budget: Any) -> None:
    """Every trial wrote a checkpoint, more than ``budget`` keeps; what is left on disk fits the budget and is the
    best trials' checkpoints."""
    records = study.trials
    written = [r for r in records if r.checkpoint_dir]
    assert len(written) == len(records) > budget.keep_best
    sizes = checkpoint_folder_sizes(study)
    assert sum(sizes.values()) <= budget.max_bytes, sizes
    best = {Path(r.checkpoint_dir).name for r in study.history().ranked()[: budget.keep_best]}
    assert set(sizes) == best, (sorted(sizes), sorted(best))
    assert all(r.checkpoint_deleted for r in written if Path(r.checkpoint_dir).name not in best)
