"""A disk that fills up while a trial writes its checkpoint: the trial fails with one clear reason and leaves no
partial checkpoint behind; the study goes on."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import lmtune
from lmtune.nlp.checkpoint import LAST, save_checkpoint
from lmtune.trial import Trial, TrialState


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), where a 4 MiB checkpoint cannot fit."""
    mount = tmp_path / "small"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)]).returncode
    ):
        pytest.skip("mounting a small tmpfs needs root and the right to mount")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def big_checkpoint(trial: Trial) -> float:
    if trial.number == 0:
        save_checkpoint(
            Path(trial.checkpoint_dir) / LAST, tensors={"w": torch.zeros(1 << 20)}, meta={"step": 1}
        )
    return 1.0


def test_a_full_disk_fails_the_trial_cleanly(small_disk: Path, tmp_path: Path, caplog) -> None:
    study = lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'study.db'}", checkpoint_root=small_disk, study_name="full"
    )
    with caplog.at_level(logging.INFO):
        study.optimize(big_checkpoint, n_trials=2)
    first, second = study.trials
    assert first.state is TrialState.FAILED and second.state is TrialState.COMPLETE
    assert "could not be written (no space left on the disk)" in first.failure_reason, first.failure_reason
    assert "free disk space" in first.failure_reason
    assert not list(small_disk.rglob("*.tmp")), list(small_disk.rglob("*"))
    assert "Traceback" not in caplog.text
