"""A Lightning callback that reports a monitored metric to an lmtune trial and stops training when pruned.

    def objective(trial):
        model = MyModule(lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True))
        trainer = lightning.Trainer(max_epochs=10, callbacks=[LmtuneCallback(trial, monitor="val_loss")])
        trainer.fit(model, datamodule=data)
        return trainer.callback_metrics["val_loss"].item()

After each validation run the callback reports ``monitor`` at the current epoch (or global step). When the
study's scheduler stops the trial, it sets ``trainer.should_stop`` so Lightning ends the fit cleanly; the study then
records the trial as PRUNED with its last reported value (call :meth:`LmtuneCallback.check_pruned` to raise
:class:`~lmtune.TrialPruned` yourself instead).
"""

from __future__ import annotations

from typing import Any

from lmtune._imports import require
from lmtune.exceptions import ConfigError, TrialPruned
from lmtune.trial import Trial

__all__ = ["LmtuneCallback"]

_pl = require("lightning.pytorch", "dev")

STEP_UNITS = ("epoch", "global_step")


class LmtuneCallback(_pl.Callback):
    """Report ``monitor`` from ``trainer.callback_metrics`` after every validation and stop when pruned.

    ``step`` is the unit of the reported step: ``epoch`` (default) or ``global_step`` (optimizer steps).
    """

    def __init__(self, trial: Trial, monitor: str = "val_loss", step: str = "epoch") -> None:
        if step not in STEP_UNITS:
            raise ConfigError(f"step must be one of {list(STEP_UNITS)}, but got {step!r}")
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"monitor must name a logged metric such as 'val_loss', but got {monitor!r}")
        self.trial = trial
        self.monitor = monitor
        self.step = step
        self.pruned = False

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            raise ConfigError(
                f"metric {self.monitor!r} was not logged in validation; logged metrics: "
                f"{sorted(trainer.callback_metrics)}; log it with self.log({self.monitor!r}, ...) "
                f"or set monitor to one of them"
            )
        step = trainer.current_epoch if self.step == "epoch" else trainer.global_step
        self.trial.report(float(value), int(step))
        if self.trial.should_stop():
            self.pruned = True
            trainer.should_stop = True

    def check_pruned(self) -> None:
        """Raise :class:`~lmtune.TrialPruned` when the scheduler stopped this trial."""
        if self.pruned:
            raise TrialPruned(f"trial {self.trial.number} pruned by the scheduler")
