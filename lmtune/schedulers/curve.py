"""Learning-curve extrapolation (after Domhan et al. 2015, much simplified): stop a trial whose extrapolated final
value cannot beat the current best with reasonable probability.

The trial's curve so far is fitted by a small ensemble of learning-curve shapes, ``a + b * t**-c`` for c in
(0.5, 1, 2) and ``a + b * log t``, each by linear least squares. Their predictions at ``max_resource`` give a mean
and a spread (residual variance plus the disagreement between shapes); assuming a normal error the probability
of beating the best value any trial reached at ``max_resource`` is computed, and the trial is stopped when it is
below ``probability``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler
from lmtune.trial import TrialRecord, TrialState

__all__ = ["CurveExtrapolation", "extrapolate"]

# Learning-curve shapes as feature maps of the step t: value ~ a + b * shape(t).
_SHAPES = (
    lambda t: t**-0.5,
    lambda t: t**-1.0,
    lambda t: t**-2.0,
    np.log,
)


def extrapolate(steps: np.ndarray, values: np.ndarray, target: float) -> tuple[float, float]:
    """Mean and standard deviation of the value predicted at step ``target`` from the curve ``(steps, values)``."""
    means, variances = [], []
    for shape in _SHAPES:
        design = np.column_stack([np.ones_like(steps), shape(steps)])
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        residual = values - design @ coef
        variances.append(float(residual @ residual) / max(len(steps) - 2, 1))
        means.append(float(coef[0] + coef[1] * shape(np.float64(target))))
    mean = float(np.mean(means))
    std = math.sqrt(float(np.mean(variances)) + float(np.var(means)))
    return mean, std


class CurveExtrapolation(Scheduler):
    """Stop when P(final value beats the best final value so far) < ``probability``.

    Decisions start once the trial has ``min_points`` reports and some trial reached ``max_resource``. ``min_std``
    (in the objective's units) is a floor on the prediction's spread, e.g. the validation set's standard error.
    """

    def __init__(
        self,
        max_resource: int,
        min_points: int = 3,
        probability: float = 0.05,
        min_std: float = 0.0,
        *,
        resource: str = "epoch",
    ) -> None:
        if isinstance(max_resource, bool) or not isinstance(max_resource, int) or max_resource < 2:
            raise ConfigError(f"scheduler.max_resource must be an integer >= 2, but got {max_resource!r}")
        if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 2:
            raise ConfigError(f"scheduler.min_points must be an integer >= 2, but got {min_points!r}")
        if not isinstance(probability, (int, float)) or not 0 < probability < 1:
            raise ConfigError(f"scheduler.probability must be in (0, 1), but got {probability!r}")
        if not isinstance(min_std, (int, float)) or min_std < 0:
            raise ConfigError(f"scheduler.min_std must be >= 0, but got {min_std!r}")
        self.max_resource = max_resource
        self.min_points = min_points
        self.probability = float(probability)
        self.min_std = float(min_std)
        self.resource = resource

    def best_final(self, history: TrialHistory) -> float | None:
        """The best signed value any trial reached at ``max_resource``."""
        finals = [
            history.signed(r.intermediate[self.max_resource])
            for r in history
            if r.state is not TrialState.FAILED and self.max_resource in r.intermediate
        ]
        finals += [history.signed(r.value) for r in history.complete()]  # type: ignore[arg-type]
        return min(finals) if finals else None

    def chance_to_beat(self, trial: TrialRecord, history: TrialHistory) -> float | None:
        """P(the trial's value at ``max_resource`` beats the best), or None when it cannot be judged yet."""
        step = trial.last_step
        if step is None or step >= self.max_resource or len(trial.intermediate) < self.min_points:
            return None
        best = self.best_final(history)
        if best is None:
            return None
        steps = np.array(sorted(s for s in trial.intermediate if s > 0), dtype=float)
        if len(steps) < self.min_points:
            return None
        values = np.array([history.signed(trial.intermediate[int(s)]) for s in steps])
        mean, std = extrapolate(steps, values, float(self.max_resource))
        std = max(std, self.min_std, 1e-12)
        return 0.5 * math.erfc((mean - best) / (std * math.sqrt(2)))

    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        chance = self.chance_to_beat(trial, history)
        if chance is None or chance >= self.probability:
            return CONTINUE
        return Decision(Action.STOP, f"extrapolated final value beats the best with probability {chance:.3f}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": "CurveExtrapolation",
            "max_resource": self.max_resource,
            "min_points": self.min_points,
            "probability": self.probability,
            "min_std": self.min_std,
        }
