"""Hugging Face ``Trainer`` integration: a callback that reports evaluations, and a search over a user's Trainer.

:class:`LmtuneTrainerCallback` reports the objective of every evaluation to an lmtune trial and ends training
(``control.should_training_stop``) when the study's scheduler stops the trial.

:func:`tune` follows the contract of ``Trainer.hyperparameter_search``: the user gives a factory that builds a
``Trainer`` (usually with a ``model_init`` function) for a trial's parameters, a search space, and an objective
computed from the evaluation metrics (by default transformers' own: the evaluation loss, or the sum of the
metrics). Every trial writes into its own folder; only the best trial's model is kept (``save_model``) and the
others' folders are deleted as the study goes, so a long search does not fill the disk. Between trials the model
and optimizer are released and the CUDA cache is emptied.
"""

from __future__ import annotations

import gc
import logging
import math
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lmtune._imports import require
from lmtune.exceptions import ConfigError
from lmtune.samplers import Sampler
from lmtune.schedulers.base import Scheduler
from lmtune.space import SearchSpace
from lmtune.study import Study, create_study
from lmtune.trial import Trial, TrialState

__all__ = ["BEST_MODEL", "LmtuneTrainerCallback", "free_trainer", "training_arguments", "tune"]

transformers = require("transformers", "nlp")
from transformers.trainer_utils import BestRun, default_compute_objective  # noqa: E402

logger = logging.getLogger("lmtune.integrations.hf")

BEST_MODEL = "best_model"  # folder, inside the best trial's folder, that holds its saved model
STEP_UNITS = ("global_step", "epoch")

Metrics = Mapping[str, float]


class LmtuneTrainerCallback(transformers.TrainerCallback):
    """Report ``compute_objective(metrics)`` of each evaluation to ``trial`` and stop when the scheduler says so.

    The step is the Trainer's ``global_step`` (optimizer steps) or, with ``step="epoch"``, the epoch number
    (rounded down). ``last_value`` and ``last_metrics`` hold the latest evaluation.
    """

    def __init__(
        self,
        trial: Trial,
        compute_objective: Callable[[Metrics], float] | None = None,
        step: str = "global_step",
    ) -> None:
        if step not in STEP_UNITS:
            raise ConfigError(f"step must be one of {list(STEP_UNITS)}, but got {step!r}")
        self.trial = trial
        self.compute_objective = compute_objective or default_compute_objective
        self.step = step
        self.last_value: float | None = None
        self.last_metrics: dict[str, float] | None = None
        self.pruned = False

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Metrics | None = None, **kwargs: Any
    ) -> None:
        if not metrics:
            return
        value = float(self.compute_objective(dict(metrics)))
        self.last_value, self.last_metrics = value, dict(metrics)
        step = state.global_step if self.step == "global_step" else int(math.floor(state.epoch or 0))
        if step in self.trial.study._storage.get_trial(self.trial.trial_id).intermediate:
            return  # evaluated again at the same step (e.g. the final evaluate()): reported already
        self.trial.report(value, int(step))
        if self.trial.should_stop():
            self.pruned = True
            control.should_training_stop = True


def training_arguments(args: Any, params: Mapping[str, Any], **overrides: Any) -> Any:
    """A copy of ``TrainingArguments`` ``args`` with the fields named in ``params`` (and ``overrides``) set.

    Parameters that are not ``TrainingArguments`` fields are left for the factory (e.g. a dropout for
    ``model_init``); a value is cast to the field's current type, as ``hyperparameter_search`` does.
    """
    import dataclasses

    fields = {f.name for f in dataclasses.fields(args) if f.init}
    changes: dict[str, Any] = {}
    for key, value in {**params, **overrides}.items():
        if key not in fields:
            continue
        old = getattr(args, key)
        changes[key] = type(old)(value) if old is not None and not isinstance(old, (list, dict)) else value
    return dataclasses.replace(args, **changes)


def free_trainer(trainer: Any) -> None:
    """Drop the Trainer's model, optimizer and scheduler and return their memory (CUDA cache included)."""
    for name in ("model", "model_wrapped", "optimizer", "lr_scheduler"):
        if hasattr(trainer, name):
            setattr(trainer, name, None)
    accelerator = getattr(trainer, "accelerator", None)
    if accelerator is not None:
        accelerator.free_memory()
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _params_of(trial: Trial, space: Any) -> dict[str, Any]:
    if callable(space) and not isinstance(space, SearchSpace):
        params = space(trial)
        if not isinstance(params, Mapping):
            raise ConfigError(f"the space function must return a dict of parameters, but returned {params!r}")
        return dict(params)
    return trial.params


def _is_new_best(study: Study, value: float) -> bool:
    done = [r for r in study.history() if r.state is TrialState.COMPLETE and r.value is not None]
    if not done:
        return True
    best = max(r.value for r in done) if study.direction == "maximize" else min(r.value for r in done)
    return value > best if study.direction == "maximize" else value < best


def _keep_only(root: Path, keep: Path | None) -> None:
    """Delete every trial folder under ``root`` except ``keep``."""
    for folder in root.glob("trial_*"):
        if folder.is_dir() and (keep is None or folder.resolve() != keep.resolve()):
            shutil.rmtree(folder, ignore_errors=True)


def tune(
    trainer_factory: Callable[[dict[str, Any]], Any],
    space: SearchSpace | Mapping[str, Any] | Callable[[Trial], Mapping[str, Any]],
    n_trials: int,
    *,
    compute_objective: Callable[[Metrics], float] | None = None,
    direction: str = "minimize",
    study: Study | None = None,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    seed: int | None = None,
    output_dir: str | Path | None = None,
    step: str = "global_step",
    timeout: float | None = None,
) -> BestRun | None:
    """Search the parameters of a Hugging Face ``Trainer``; returns ``BestRun`` like ``hyperparameter_search``.

    ``trainer_factory(params)`` builds a fresh ``Trainer`` for one trial (use :func:`training_arguments` to put
    the parameters into ``TrainingArguments`` and ``model_init`` to build the model); its ``output_dir`` is replaced
    by the trial's own folder under ``output_dir``. ``space`` is an lmtune space (a mapping or
    :class:`~lmtune.SearchSpace`) or, as with the Optuna backend of ``hyperparameter_search``, a function of the
    trial returning the parameters (it calls ``trial.suggest_*``). The objective of each evaluation is
    ``compute_objective(metrics)``; a trial that never evaluated is evaluated once at the end.

    The returned ``BestRun`` has ``run_id`` (the best trial's number), ``objective``, ``hyperparameters`` and
    ``run_summary`` (the lmtune :class:`~lmtune.Study`); the best model is in ``<trial folder>/best_model``, also
    recorded as the trial's ``model_dir`` user attribute. ``None`` when no trial completed (all pruned or failed):
    pass your own ``study`` to inspect them.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"n_trials must be a positive integer, but got {n_trials!r}")
    declared = None if callable(space) and not isinstance(space, SearchSpace) else space
    if study is None:
        study = create_study(
            direction=direction,
            sampler=sampler,
            seed=seed,
            space=declared,
            scheduler=scheduler,
            checkpoint_root=output_dir,
        )
    elif study.direction != direction:
        raise ConfigError(
            f"the study's direction is {study.direction!r} but direction={direction!r} was given"
        )
    root = Path(study.checkpoint_root)

    def objective(trial: Trial) -> float:
        trainer = trainer_factory(_params_of(trial, space))
        folder = trial.checkpoint_dir
        trainer.args.output_dir = str(folder)
        callback = LmtuneTrainerCallback(trial, compute_objective, step)
        trainer.add_callback(callback)
        try:
            trainer.train()
            if callback.last_value is None:
                trainer.evaluate()
            if callback.last_value is None:
                raise ConfigError(
                    f"trial {trial.number}: evaluation returned no metrics; give the Trainer an eval_dataset"
                )
            value = callback.last_value
            if not callback.pruned and _is_new_best(study, value):
                trainer.save_model(str(folder / BEST_MODEL))
                trial.set_user_attr("model_dir", str(folder / BEST_MODEL))
                _keep_only(root, folder)
                for stale in folder.glob("checkpoint-*"):
                    shutil.rmtree(stale, ignore_errors=True)
            else:
                shutil.rmtree(folder, ignore_errors=True)
            return value
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            free_trainer(trainer)

    study.optimize(objective, n_trials=n_trials, timeout=timeout)
    best = study.history().best()
    if best is None:
        return None
    return BestRun(
        run_id=str(best.number),
        objective=float(best.value),
        hyperparameters=dict(best.params),
        run_summary=study,
    )
