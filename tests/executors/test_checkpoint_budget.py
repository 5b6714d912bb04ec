"""The checkpoint budget holds wherever trials run: in the calling process and in the pool's trial processes, which
tell their outcomes themselves (Ray and fused studies: in their own test modules)."""

from __future__ import annotations

from pathlib import Path

import pytest
from checkpoint_budget_checks import assert_checkpoints_within_budget
from parallel_objectives import CHECKPOINT_BYTES, writes_checkpoint

import lmtune
from lmtune.checkpoints import CheckpointBudget
from lmtune.executors import LocalExecutor
from lmtune.samplers import RandomSampler

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}
BUDGET = CheckpointBudget(keep_best=2, max_bytes=2 * CHECKPOINT_BYTES)


@pytest.mark.parametrize("workers", [None, 2])
def test_the_checkpoint_budget_holds_in_process_and_with_two_workers(
    tmp_path: Path, workers: int | None
) -> None:
    study = lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'budget.db'}",
        space=SPACE,
        sampler=RandomSampler(seed=0),
        checkpoint_budget=BUDGET,
    )
    if workers is None:
        study.optimize(writes_checkpoint, n_trials=6)
    else:
        LocalExecutor(workers=workers).optimize(study, writes_checkpoint, n_trials=6)
    # Six checkpoints were written, three times what the budget allows.
    assert_checkpoints_within_budget(study, BUDGET)
