"""Keras 3 (on PyTorch) under lmtune: a pruning callback for ``fit`` and Keras Tuner hypermodels, unchanged.

    from lmtune.integrations.keras import search, best_hyperparameters

    study = search(build_model, x, y, epochs=9, validation_data=(x_val, y_val), objective="val_accuracy",
                   n_trials=20, seed=0)
    model = build_model(best_hyperparameters(study))

``build_model(hp)`` (or a Keras Tuner ``HyperModel`` with ``build`` and, optionally, ``fit``) receives lmtune's
:class:`~lmtune.integrations.keras_hyperparameters.HyperParameters`, which answers Keras Tuner's calls; Keras Tuner
itself need not be installed. :func:`search` records the search space from one build, creates a study (by default
with ASHA over the epochs, so poor configurations stop after a few epochs) and runs it. The trial's value is the
objective's best epoch, as in Keras Tuner. Keras runs on PyTorch: ``KERAS_BACKEND`` is set to ``torch`` unless
it is set already.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lmtune._imports import require
from lmtune.exceptions import ConfigError, TrialPruned
from lmtune.integrations.keras_hyperparameters import HyperParameters, discover_space
from lmtune.schedulers import SuccessiveHalving
from lmtune.schedulers.base import Scheduler
from lmtune.study import Study, create_study
from lmtune.trial import Trial

__all__ = ["HyperParameters", "KerasObjective", "KerasPruningCallback", "best_hyperparameters", "search"]

os.environ.setdefault("KERAS_BACKEND", "torch")
_keras = require("keras", "keras")

MINIMIZED_WORDS = ("loss", "error", "mse", "mae")


def objective_of(objective: Any, direction: str | None = None) -> tuple[str, str]:
    """The monitored metric and its direction from a metric name (``val_loss`` is minimised, ``val_accuracy``
    maximised) or a Keras Tuner ``Objective`` (``name`` and ``direction``: ``min`` or ``max``)."""
    if isinstance(objective, str):
        name = objective
    elif isinstance(getattr(objective, "name", None), str):
        name = objective.name
        direction = direction or {"min": "minimize", "max": "maximize"}.get(
            getattr(objective, "direction", "")
        )
    else:
        raise ConfigError(
            f"objective must name a logged metric such as 'val_accuracy', but got {objective!r}"
        )
    if direction is None:
        direction = "minimize" if any(word in name.lower() for word in MINIMIZED_WORDS) else "maximize"
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"direction must be 'minimize' or 'maximize', but got {direction!r}")
    return name, direction


class KerasPruningCallback(_keras.callbacks.Callback):
    """Reports ``monitor`` to the trial after each epoch (step = epochs done, from 1) and stops ``fit`` when the
    scheduler stops the trial. ``epochs`` is the number of epochs trained; it is stored with the trial as the user
    attribute ``epochs``."""

    def __init__(self, trial: Trial, monitor: str = "val_loss") -> None:
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise ConfigError(f"monitor must name a logged metric such as 'val_loss', but got {monitor!r}")
        self.trial = trial
        self.monitor = monitor
        self.epochs = 0
        self.pruned = False

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            raise ConfigError(
                f"metric {self.monitor!r} is not in the epoch's logs {sorted(logs)}; compile the model with that "
                f"metric (and pass validation_data for val_ metrics) or monitor one of them"
            )
        self.epochs = epoch + 1
        self.trial.report(float(logs[self.monitor]), self.epochs)
        if self.trial.should_stop():
            self.pruned = True
            self.model.stop_training = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self.trial.set_user_attr("epochs", self.epochs)

    def check_pruned(self) -> None:
        """Raise :class:`~lmtune.TrialPruned` when the scheduler stopped this trial."""
        if self.pruned:
            raise TrialPruned(f"trial {self.trial.number} pruned by the scheduler after epoch {self.epochs}")


def _build(hypermodel: Any) -> Callable[[HyperParameters], Any]:
    build = getattr(hypermodel, "build", hypermodel)
    if not callable(build):
        raise ConfigError(
            f"the hypermodel must be a function build_model(hp) or have a build(hp) method, but got {hypermodel!r}"
        )
    return build


def _value_of(result: Any, monitor: str, direction: str) -> float | None:
    """A value out of what a hypermodel's own ``fit`` returned: a number, a dict of metrics or a History."""
    if isinstance(result, (int, float)) and not isinstance(result, bool):
        return float(result)
    if isinstance(result, Mapping) and monitor in result:
        return float(result[monitor])
    values = getattr(result, "history", {}).get(monitor) if hasattr(result, "history") else None
    if values:
        return float(min(values) if direction == "minimize" else max(values))
    return None


@dataclass
class KerasObjective:
    """An lmtune objective that builds the hypermodel with the trial's ``hp`` and fits it with ``fit_args`` and
    ``fit_kwargs`` (``epochs``, ``validation_data``, ``batch_size``, ``callbacks``, ...). ``seed`` seeds Keras
    per trial (``seed + trial.number``) for repeatable studies."""

    hypermodel: Any
    monitor: str = "val_loss"
    fit_args: Sequence[Any] = ()
    fit_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def __call__(self, trial: Trial) -> float:
        if self.seed is not None:
            _keras.utils.set_random_seed(self.seed + trial.number)
        hp = HyperParameters.for_trial(trial)
        model = _build(self.hypermodel)(hp)
        callback = KerasPruningCallback(trial, self.monitor)
        kwargs = dict(self.fit_kwargs)
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), callback]
        kwargs.setdefault("verbose", 0)
        try:
            fit = getattr(self.hypermodel, "fit", None)
            if callable(fit):
                result = fit(hp, model, *self.fit_args, **kwargs)
            else:
                result = model.fit(*self.fit_args, **kwargs)
        finally:
            _keras.backend.clear_session()
        direction = trial.study.direction
        reported = [v for _, v in sorted(trial.study.storage.get_trial(trial.trial_id).intermediate.items())]
        if reported:
            return min(reported) if direction == "minimize" else max(reported)
        value = _value_of(result, self.monitor, direction)
        if value is None or not math.isfinite(value):
            raise ConfigError(f"the fit reported no {self.monitor!r}: pass the callbacks on to model.fit")
        return value


def default_scheduler(epochs: int) -> Scheduler | None:
    """ASHA over the epochs (rungs 1, 3, 9, ... epochs), or None for fewer than 3 epochs."""
    return SuccessiveHalving(max_resource=epochs, min_resource=1, reduction_factor=3) if epochs >= 3 else None


def search(
    hypermodel: Any,
    *fit_args: Any,
    objective: Any = "val_loss",
    n_trials: int = 10,
    study: Study | None = None,
    direction: str | None = None,
    seed: int | None = None,
    scheduler: Scheduler | None | str = "asha",
    storage: Any = None,
    **fit_kwargs: Any,
) -> Study:
    """Tune a Keras Tuner hypermodel like ``tuner.search(x, y, epochs=..., validation_data=...)`` and return the
    study. ``objective`` is the metric to optimise (a name or a Keras Tuner ``Objective``). Without ``study`` one is
    created over the space the hypermodel declares (in ``storage``, default in memory), with ``scheduler``
    (``"asha"``: ASHA over ``epochs``; None: no early stopping) and ``seed``; with a ``study`` its sampler and
    scheduler are used, and a study without a declared space takes the hypermodel's parameters define-by-run."""
    monitor, direction = objective_of(objective, direction)
    if study is None:
        space = discover_space(_build(hypermodel))
        _keras.backend.clear_session()
        if scheduler == "asha":
            scheduler = default_scheduler(int(fit_kwargs.get("epochs", 1)))
        elif isinstance(scheduler, str):
            raise ConfigError(f"scheduler must be 'asha', None or a Scheduler, but got {scheduler!r}")
        study = create_study(
            direction=direction, space=space, seed=seed, scheduler=scheduler, storage=storage
        )
    elif study.direction != direction:
        raise ConfigError(
            f"the study's direction is {study.direction}, but the objective {monitor!r} reads as {direction}; "
            f"give direction={study.direction!r} if that is meant"
        )
    study.optimize(KerasObjective(hypermodel, monitor, fit_args, fit_kwargs, seed), n_trials=n_trials)
    return study


def best_hyperparameters(study: Study) -> HyperParameters:
    """The best trial's ``hp``, to build the best model again: ``build_model(best_hyperparameters(study))``."""
    return HyperParameters.from_values(study.best_params)
