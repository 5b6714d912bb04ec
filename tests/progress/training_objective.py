"""A stand-in for a fine-tuning run: optimizer steps that take time, an evaluation every epoch, and the
``train_progress`` attribute the real runner writes, so the terminal progress has something to show."""

from __future__ import annotations

import os
import time

from lmtune.exceptions import TrialPruned
from lmtune.executors.packing import ProgressReport
from lmtune.trial import Trial

STEPS_PER_EPOCH = 10
EPOCHS = 3
STEP_SECONDS = float(os.environ.get("LMTUNE_TEST_STEP_SECONDS", "0.05"))


def training(trial: Trial) -> float:
    """Accuracy that rises with the epochs and peaks at learning rate 1e-3."""
    import math

    lr = float(trial.params["learning_rate"])
    quality = 1.0 / (1.0 + abs(math.log10(lr) + 3.0))
    progress = ProgressReport(trial, interval=0.0)
    total = STEPS_PER_EPOCH * EPOCHS
    accuracy = 0.5
    for step in range(1, total + 1):
        time.sleep(STEP_SECONDS)
        progress.update(step, step=step, total_steps=total, steps_per_epoch=STEPS_PER_EPOCH)
        if step % STEPS_PER_EPOCH == 0:
            accuracy = 0.5 + 0.45 * quality * step / total
            trial.report(accuracy, step)
            if trial.should_stop():
                raise TrialPruned(f"stopped at step {step}")
    return accuracy
