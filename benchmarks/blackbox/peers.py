"""The optimisers compared, each run through its own public API on a :class:`~benchmarks.blackbox.tasks.Task`.

``run(peer, task, seed, budget)`` returns the losses in evaluation order and the parameters of each evaluation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import lmtune
from lmtune.samplers import AutoSampler, GPSampler, RandomSampler, Sampler, TPESampler
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace

from .tasks import Task

__all__ = ["OURS", "PEERS", "SLOW_PEERS", "peer_version", "run"]

logging.getLogger("lmtune").setLevel(logging.WARNING)

OURS: dict[str, Callable[[int, int], Sampler]] = {
    "lmtune auto": lambda seed, budget: AutoSampler(seed=seed, n_trials=budget),
    "lmtune TPE": lambda seed, budget: TPESampler(seed=seed),
    "lmtune GP": lambda seed, budget: GPSampler(seed=seed),
    "random": lambda seed, budget: RandomSampler(seed=seed),
}
PEERS = ["Optuna TPE (default)", "Optuna GP", "Hyperopt TPE"]
#: Peers whose results are cached in benchmarks/results (keyed by their version).
SLOW_PEERS = set(PEERS)

Result = tuple[list[float], list[dict[str, Any]]]


def peer_version(peer: str) -> str:
    if peer.startswith("Optuna"):
        import optuna

        return f"optuna {optuna.__version__}"
    if peer.startswith("Hyperopt"):
        import hyperopt

        return f"hyperopt {hyperopt.__version__}"
    return f"lmtune {lmtune.__version__}"


def _ours(make: Callable[[int, int], Sampler], task: Task, seed: int, budget: int) -> Result:
    study = lmtune.create_study(sampler=make(seed, budget), space=task.space)
    losses: list[float] = []
    params: list[dict[str, Any]] = []

    def objective(trial: lmtune.Trial) -> float:
        value = task.loss(trial.params)
        losses.append(value)
        params.append(dict(trial.params))
        return value

    study.optimize(objective, n_trials=budget)
    return losses, params


def _optuna_params(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Define-by-run suggestions of ``space``: conditional parameters only where active."""
    values: dict[str, Any] = {}
    for name in space:
        if not space.is_active(name, values):
            continue
        dist = space[name]
        if isinstance(dist, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, list(dist.choices))
        elif isinstance(dist, IntDistribution):
            values[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            assert isinstance(dist, FloatDistribution)
            values[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return values


def _optuna(kind: str, task: Task, seed: int, budget: int) -> Result:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if kind == "gp":
        sampler = optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed)  # the sampler optuna.create_study() uses by default
    study = optuna.create_study(sampler=sampler)
    space = task.search_space()
    losses: list[float] = []
    params: list[dict[str, Any]] = []

    def objective(trial: Any) -> float:
        values = _optuna_params(trial, space)
        value = task.loss(values)
        losses.append(value)
        params.append(values)
        return value

    study.optimize(objective, n_trials=budget)
    return losses, params


def _hyperopt_expr(name: str, dist: Any) -> Any:
    from hyperopt import hp

    if isinstance(dist, CategoricalDistribution):
        return hp.choice(name, list(dist.choices))
    if isinstance(dist, IntDistribution):
        if dist.log:
            return hp.qloguniform(name, math.log(dist.low), math.log(dist.high), 1)
        return hp.quniform(name, dist.low, dist.high, dist.step)
    if dist.step is not None:
        return hp.quniform(name, dist.low, dist.high, dist.step)
    if dist.log:
        return hp.loguniform(name, math.log(dist.low), math.log(dist.high))
    return hp.uniform(name, dist.low, dist.high)


def _hyperopt_space(space: SearchSpace) -> dict[str, Any]:
    """Hyperopt's tree: a conditional parameter lives in the branch of its (categorical) parent's choice."""
    from hyperopt import hp

    conditions = space.conditions
    children: dict[str, list[str]] = {}
    for child, parents in conditions.items():
        if len(parents) != 1:
            raise ValueError(f"{child}: only one parent per condition is mapped to hyperopt")
        children.setdefault(next(iter(parents)), []).append(child)
    tree: dict[str, Any] = {}
    for name in space:
        if name in conditions:
            continue
        dist = space[name]
        if name in children:
            branches = []
            for choice in dist.choices:  # type: ignore[attr-defined]
                branch = {name: choice}
                for child in children[name]:
                    if choice in conditions[child][name]:
                        branch[child] = _hyperopt_expr(f"{child}|{choice}", space[child])
                branches.append(branch)
            tree[f"{name}|branch"] = hp.choice(name, branches)
        else:
            tree[name] = _hyperopt_expr(name, dist)
    return tree


def _flatten(sample: Mapping[str, Any], space: SearchSpace) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in sample.items():
        if isinstance(value, Mapping):
            flat.update(value)
        else:
            flat[key] = value
    return {name: space[name].cast(flat[name]) for name in space if name in flat}


def _hyperopt(task: Task, seed: int, budget: int) -> Result:
    from hyperopt import STATUS_OK, Trials, fmin, tpe

    space = task.search_space()
    losses: list[float] = []
    params: list[dict[str, Any]] = []

    def objective(sample: Mapping[str, Any]) -> dict[str, Any]:
        values = _flatten(sample, space)
        value = task.loss(values)
        losses.append(value)
        params.append(values)
        return {"loss": value, "status": STATUS_OK}

    fmin(
        objective,
        _hyperopt_space(space),
        algo=tpe.suggest,
        max_evals=budget,
        trials=Trials(),
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
    return losses, params


def run(peer: str, task: Task, seed: int, budget: int) -> Result:
    """Run one optimiser on one task for ``budget`` evaluations."""
    if peer in OURS:
        return _ours(OURS[peer], task, seed, budget)
    if peer == "Optuna TPE (default)":
        return _optuna("tpe", task, seed, budget)
    if peer == "Optuna GP":
        return _optuna("gp", task, seed, budget)
    if peer == "Hyperopt TPE":
        return _hyperopt(task, seed, budget)
    raise ValueError(f"unknown peer {peer!r}; known: {[*OURS, *PEERS]}")
