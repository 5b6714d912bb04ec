"""Run objectives written for Optuna under lmtune, unchanged.

An Optuna objective calls ``trial.suggest_*``, ``trial.report(value, step)``, ``trial.should_prune()`` and raises
``optuna.TrialPruned()``. :func:`wrap_objective` turns it into an lmtune objective: the trial it receives is an
:class:`OptunaTrial` that answers those calls through an lmtune trial, so lmtune's samplers choose the values and
lmtune's schedulers decide the pruning; ``optuna.TrialPruned`` becomes lmtune's :class:`~lmtune.TrialPruned`.

    study = lmtune.create_study(direction="minimize", sampler=TPESampler(seed=0), scheduler=MedianStopping())
    study.optimize(wrap_objective(objective), n_trials=50)
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from lmtune._imports import require
from lmtune.exceptions import ConfigError, TrialPruned
from lmtune.study import Study
from lmtune.trial import Trial

__all__ = ["OptunaTrial", "optimize", "wrap_objective"]

optuna = require("optuna", "dev")


class OptunaTrial:
    """The part of ``optuna.trial.Trial`` that objectives use, backed by an lmtune :class:`~lmtune.Trial`."""

    def __init__(self, trial: Trial) -> None:
        self._trial = trial

    # Suggestions -------------------------------------------------------------------------------------------------
    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return self._trial.suggest_float(name, low, high, step=step, log=log)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._trial.suggest_int(name, low, high, step=step, log=log)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._trial.suggest_categorical(name, choices)

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        return self._trial.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        return self._trial.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> float:
        return self._trial.suggest_float(name, low, high, step=q)

    # Reporting and pruning ---------------------------------------------------------------------------------------
    def report(self, value: float, step: int) -> None:
        """Record an intermediate value; as in Optuna, a second report at the same step is ignored with a
        warning."""
        if step in self._trial.study.storage.get_trial(self._trial.trial_id).intermediate:
            warnings.warn(
                f"trial {self.number} already reported at step {step}; the new value is ignored",
                UserWarning,
                stacklevel=2,
            )
            return
        self._trial.report(float(value), int(step))

    def should_prune(self) -> bool:
        return self._trial.should_stop()

    # Attributes --------------------------------------------------------------------------------------------------
    def set_user_attr(self, key: str, value: Any) -> None:
        self._trial.set_user_attr(key, value)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self._trial.user_attrs

    @property
    def params(self) -> dict[str, Any]:
        return self._trial.params

    @property
    def distributions(self) -> dict[str, Any]:
        return self._trial.distributions

    @property
    def number(self) -> int:
        return self._trial.number

    @property
    def study(self) -> Study:
        """The lmtune study running this trial: ``best_value``, ``best_params``, ``best_trial``, ``trials`` and
        ``study_name`` read as in Optuna; ``direction`` is the string "minimize" or "maximize"."""
        return self._trial.study

    @property
    def lmtune_trial(self) -> Trial:
        """The lmtune trial behind this handle."""
        return self._trial

    def __repr__(self) -> str:
        return f"OptunaTrial(number={self.number}, params={self.params!r})"


def wrap_objective(objective: Callable[[Any], Any]) -> Callable[[Trial], float]:
    """An lmtune objective that runs the Optuna ``objective`` with an :class:`OptunaTrial`."""

    @functools.wraps(objective)
    def run(trial: Trial) -> float:
        try:
            value = objective(OptunaTrial(trial))
        except optuna.TrialPruned as exc:
            raise TrialPruned(str(exc) or f"trial {trial.number} pruned") from exc
        if isinstance(value, (tuple, list)):
            raise ConfigError(
                f"trial {trial.number}: the objective returned {len(value)} values; lmtune studies "
                f"optimise one value: return a single number"
            )
        return value

    return run


def optimize(
    study: Study,
    objective: Callable[[Any], Any],
    n_trials: int | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> None:
    """``study.optimize`` for an Optuna objective; keyword arguments go to :meth:`lmtune.Study.optimize`."""
    study.optimize(wrap_objective(objective), n_trials=n_trials, timeout=timeout, **kwargs)
