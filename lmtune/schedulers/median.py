"""Median stopping (Golovin et al. 2017, Google Vizier): stop a trial whose best value so far is worse than the
median of the other trials' best values up to the same step."""

from __future__ import annotations

import statistics
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler
from lmtune.trial import TrialRecord, TrialState

__all__ = ["MedianStopping", "best_up_to"]


def best_up_to(record: TrialRecord, step: int, history: TrialHistory) -> float | None:
    """The best (signed, lower is better) value the trial reported at steps ``<= step``."""
    values = [history.signed(v) for s, v in record.intermediate.items() if s <= step]
    return min(values) if values else None


class MedianStopping(Scheduler):
    """Stop a trial at step ``t`` when its best value up to ``t`` is worse than the median of the best values up to
    ``t`` of the other trials that reached ``t``.

    Nothing is stopped before ``min_resource`` (the warm-up, in report steps) or while fewer than
    ``n_startup_trials`` other trials reached the step.
    """

    def __init__(self, min_resource: int = 1, n_startup_trials: int = 5, *, resource: str = "epoch") -> None:
        if isinstance(min_resource, bool) or not isinstance(min_resource, int) or min_resource < 0:
            raise ConfigError(
                f"scheduler.min_resource must be a non-negative integer, but got {min_resource!r}"
            )
        if (
            isinstance(n_startup_trials, bool)
            or not isinstance(n_startup_trials, int)
            or n_startup_trials < 1
        ):
            raise ConfigError(
                f"scheduler.n_startup_trials must be a positive integer, but got {n_startup_trials!r}"
            )
        self.min_resource = min_resource
        self.n_startup_trials = n_startup_trials
        self.resource = resource

    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        step = trial.last_step
        if step is None or step < self.min_resource:
            return CONTINUE
        others = [
            best_up_to(r, step, history)
            for r in history
            if r.number != trial.number and r.state is not TrialState.FAILED and step in r.intermediate
        ]
        if len(others) < self.n_startup_trials:
            return CONTINUE
        median = statistics.median(v for v in others if v is not None)
        mine = best_up_to(trial, step, history)
        if mine is not None and mine > median:
            return Decision(
                Action.STOP, f"worse than the median of {len(others)} trials at {self.resource} {step}"
            )
        return CONTINUE

    def describe(self) -> dict[str, Any]:
        return {
            "name": "MedianStopping",
            "min_resource": self.min_resource,
            "n_startup_trials": self.n_startup_trials,
        }
