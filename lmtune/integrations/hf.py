"""Hugging Face ``Trainer`` integration: a callback that reports evaluations, and a search over a user's Trainer.

:class:`LmtuneTrainerCallback` reports the objective of every evaluation to an lmtune trial and ends training
(``control.should_training_stop``) when the study's scheduler stops the trial.

:func:`hyperparameter_search` tunes a ``Trainer`` the user already built with ``model_init``, as
``trainer.hyperparameter_search(...)`` does, and returns ``BestRun``. :func:`tune` is the same search for a
factory that builds a ``Trainer`` for a trial's parameters: the user gives the factory, a search space, and an objective
computed from the evaluation metrics (by default transformers' own: the evaluation loss, or the sum of the
metrics). Every trial writes into its own folder; only the best trial's model is kept (``save_model``) and the
others' folders are deleted as the study goes, so a long search does not fill the disk. Between trials the model
and optimizer are released and the CUDA cache is emptied.
"""

from __future__ import annotations

import functools
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

__all__ = [
    "BEST_MODEL",
    "LmtuneTrainerCallback",
    "free_trainer",
    "hyperparameter_search",
    "training_arguments",
    "tune",
]

transformers = require("transformers", "nlp")
from transformers.trainer_utils import (  # noqa: E402
    BestRun,
    default_compute_objective,
    default_hp_space_optuna,
)

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
        if step in self.trial.study.storage.get_trial(self.trial.trial_id).intermediate:
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
    return _search(
        lambda trial, params: trainer_factory(params),
        space,
        n_trials,
        compute_objective=compute_objective,
        direction=direction,
        study=study,
        sampler=sampler,
        scheduler=scheduler,
        seed=seed,
        output_dir=output_dir,
        step=step,
        timeout=timeout,
    )


def hyperparameter_search(
    trainer: Any,
    hp_space: SearchSpace | Mapping[str, Any] | Callable[[Trial], Mapping[str, Any]] | None = None,
    n_trials: int = 20,
    direction: str = "minimize",
    compute_objective: Callable[[Metrics], float] | None = None,
    *,
    study: Study | None = None,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    seed: int | None = None,
    output_dir: str | Path | None = None,
    step: str = "global_step",
    timeout: float | None = None,
) -> BestRun | None:
    """Tune ``trainer``, a ``Trainer`` built with ``model_init``, as ``trainer.hyperparameter_search`` does.

    Each trial trains a fresh copy of ``trainer`` (the same class, datasets, collator, processing class, metrics
    and your callbacks) whose ``TrainingArguments`` fields named by the trial's parameters are set, and whose
    model comes from ``model_init`` (called with the lmtune trial when it takes one argument, as with the Optuna
    backend: ``trial.params`` and ``trial.suggest_*`` work). ``hp_space`` is a function of the trial returning the
    parameters (default: transformers' own ``default_hp_space_optuna``), or an lmtune space. ``compute_objective``
    defaults to transformers' (the evaluation loss, or the sum of the metrics); the study's scheduler can stop a
    trial at any evaluation. Returns ``BestRun`` (``run_id``: the best trial's number, ``objective``,
    ``hyperparameters``, ``run_summary``: the study), or None when no trial completed. The other arguments are
    those of :func:`tune`.
    """
    if getattr(trainer, "model_init", None) is None:
        raise ConfigError(
            "hyperparameter_search needs a Trainer built with model_init=... (a function returning a fresh "
            "model), so every trial starts from new weights; pass model_init instead of model"
        )
    return _search(
        functools.partial(_trainer_like, trainer),
        hp_space if hp_space is not None else default_hp_space_optuna,
        n_trials,
        compute_objective=compute_objective,
        direction=direction,
        study=study,
        sampler=sampler,
        scheduler=scheduler,
        seed=seed,
        output_dir=output_dir if output_dir is not None else trainer.args.output_dir,
        step=step,
        timeout=timeout,
    )


def _trainer_like(trainer: Any, trial: Trial, params: Mapping[str, Any]) -> Any:
    """A new Trainer of ``trainer``'s class and parts, with ``params`` in its arguments and ``trial`` given to a
    one-argument ``model_init``."""
    from transformers.trainer_utils import number_of_arguments

    init = trainer.model_init
    user_callbacks = [
        cb for cb in trainer.callback_handler.callbacks if not type(cb).__module__.startswith("transformers.")
    ]
    return type(trainer)(
        model_init=(lambda: init(trial)) if number_of_arguments(init) == 1 else init,
        args=training_arguments(trainer.args, params),
        data_collator=trainer.data_collator,
        train_dataset=trainer.train_dataset,
        eval_dataset=trainer.eval_dataset,
        processing_class=trainer.processing_class,
        compute_loss_func=trainer.compute_loss_func,
        compute_metrics=trainer.compute_metrics,
        callbacks=user_callbacks,
        optimizer_cls_and_kwargs=trainer.optimizer_cls_and_kwargs,
        preprocess_logits_for_metrics=trainer.preprocess_logits_for_metrics,
    )


def _search(
    make_trainer: Callable[[Trial, dict[str, Any]], Any],
    space: SearchSpace | Mapping[str, Any] | Callable[[Trial], Mapping[str, Any]],
    n_trials: int,
    *,
    compute_objective: Callable[[Metrics], float] | None,
    direction: str,
    study: Study | None,
    sampler: Sampler | None,
    scheduler: Scheduler | None,
    seed: int | None,
    output_dir: str | Path | None,
    step: str,
    timeout: float | None,
) -> BestRun | None:
    """The search behind :func:`tune` and :func:`hyperparameter_search`: ``make_trainer(trial, params)``."""
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
        trainer = make_trainer(trial, _params_of(trial, space))
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
