"""Forecasts of a trial's final value from its learning curve at a rung, learned from the trials that went on to
the end (in the spirit of freeze-thaw and DyHPO, which continue the trials with the best predicted final value; kept
to a linear model so a decision stays a pure, cheap function of the history).

At rung ``level`` each trial is described by its value there and its gain since the rung below (``previous``); a
least-squares line from those two to the value at ``final`` is fitted on the trials that reported at all three.
Curves that cross (a slow starter that ends best) are then ranked by where they are heading, not by where they are.
The forecast is used only when it has earned it: on the trials already trained to the end, its leave-one-out
predictions must rank their final values better (Kendall's tau) than their value at ``level`` does; otherwise, and
while fewer than :data:`MIN_TRAINED` trials have all three reports, there is no forecast and the rung ranks by value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmtune.history import TrialHistory
from lmtune.trial import TrialRecord, TrialState

__all__ = ["MIN_TRAINED", "final_forecasts", "kendall_tau"]

#: Trials with reports at ``previous``, ``level`` and ``final`` needed before a forecast is tried.
MIN_TRAINED = 6


def final_forecasts(
    records: Sequence[TrialRecord], level: int, previous: int, final: int, history: TrialHistory
) -> dict[int, float] | None:
    """Signed forecast (a loss: lower is better) of the value at step ``final`` for every trial in ``records`` that
    reported at ``level``, keyed by trial number; None when no forecast is trusted (see the module docstring) or
    one of them has no report at ``previous``."""
    described = [r for r in records if r.state is not TrialState.FAILED and level in r.intermediate]
    trained = [i for i, r in enumerate(described) if final in r.intermediate]
    if len(trained) < MIN_TRAINED or any(previous not in r.intermediate for r in described):
        return None
    rows = _features(described, level, previous, history)
    features = rows[trained]
    finals = np.array([history.signed(described[i].intermediate[final]) for i in trained])
    held_out = np.array(
        [
            _fit_predict(np.delete(features, i, 0), np.delete(finals, i), features[i])
            for i in range(len(trained))
        ]
    )
    if kendall_tau(held_out, finals) <= kendall_tau(features[:, 1], finals):
        return None
    coef = _fit(features, finals)
    return {r.number: float(row @ coef) for r, row in zip(described, rows, strict=True)}


def _features(records: Sequence[TrialRecord], level: int, previous: int, history: TrialHistory) -> np.ndarray:
    """Rows ``[1, value at level, value at level - value at previous]``, signed."""
    now = np.array([history.signed(r.intermediate[level]) for r in records])
    before = np.array([history.signed(r.intermediate[previous]) for r in records])
    return np.column_stack([np.ones_like(now), now, now - before])


def _fit(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(features, targets, rcond=None)
    return coef


def _fit_predict(features: np.ndarray, targets: np.ndarray, row: np.ndarray) -> float:
    return float(row @ _fit(features, targets))


def kendall_tau(first: np.ndarray, second: np.ndarray) -> float:
    """Kendall's rank correlation of two equally long sequences (0 when either side is constant)."""
    from scipy.stats import kendalltau

    tau = kendalltau(first, second).statistic
    return 0.0 if np.isnan(tau) else float(tau)
