"""Time per suggestion at history sizes 100, 500, 1000 and 2000 on an 8-parameter space, in milliseconds.

Each library is timed through its ask/tell API with in-memory storage (ask + the parameter suggestions + tell);
lmtune's samplers are also timed alone ("sampler": ``suggest`` on a history growing by one trial per call)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import lmtune
from lmtune.samplers import GPSampler, Sampler, TPESampler
from lmtune.space import SearchSpace

from .peers import _optuna_params

__all__ = ["SPACE", "time_suggestions"]

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.3},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05},
    "layers": {"type": "int", "low": 1, "high": 12},
    "batch_size": {"type": "categorical", "choices": [8, 16, 32, 64]},
    "optimizer": {"type": "categorical", "choices": ["adamw", "sgd", "adagrad"]},
    "warmup": {"type": "float", "low": 0.0, "high": 0.3},
    "heads": {"type": "int", "low": 1, "high": 64, "log": True},
}


def _history(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[float]]:
    space = SearchSpace.from_dict(SPACE)
    rng = np.random.default_rng(seed)
    configs = [space.from_unit(rng.random(len(space))) for _ in range(n)]
    return configs, [float(v) for v in rng.random(n)]


def _time_lmtune(make: Callable[[], Sampler], n: int, repeats: int) -> float:
    configs, values = _history(n)
    study = lmtune.create_study(sampler=make(), space=SPACE)
    for config, value in zip(configs, values, strict=True):
        study.enqueue(config)
        trial = study.ask()
        assert trial is not None
        study.tell(trial, value)
    rng = np.random.default_rng(1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trial = study.ask()
        times.append(time.perf_counter() - start)
        assert trial is not None
        start = time.perf_counter()
        study.tell(trial, float(rng.random()))
        times[-1] += time.perf_counter() - start
    return 1000 * float(np.median(times))


def _time_lmtune_sampler(make: Callable[[], Sampler], n: int, repeats: int) -> float:
    """The sampler alone: ``suggest`` on a history that grows by one trial per call, as in a study."""
    import lmtune.history
    from lmtune.trial import TrialRecord, TrialState

    space = SearchSpace.from_dict(SPACE)
    configs, values = _history(n + repeats)
    records = [
        TrialRecord(
            trial_id=i, number=i, state=TrialState.COMPLETE, params=c, distributions=dict(space), value=v
        )
        for i, (c, v) in enumerate(zip(configs, values, strict=True))
    ]
    sampler = make()
    times = []
    for k in range(repeats):
        history = lmtune.history.TrialHistory(tuple(records[: n + k]), "minimize", space)
        start = time.perf_counter()
        sampler.suggest(space, history, n + k)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _time_optuna(kind: str, n: int, repeats: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.GPSampler(seed=0, warn_independent_sampling=False)
        if kind == "gp"
        else optuna.samplers.TPESampler(seed=0)
    )
    study = optuna.create_study(sampler=sampler)
    space = SearchSpace.from_dict(SPACE)
    dists: dict[str, Any] = {}
    probe = study.ask()
    _optuna_params(probe, space)
    dists = dict(probe.distributions)
    study.tell(probe, 0.5)
    configs, values = _history(n - 1)
    study.add_trials(
        [
            optuna.trial.create_trial(params=c, distributions=dists, value=v)
            for c, v in zip(configs, values, strict=True)
        ]
    )
    rng = np.random.default_rng(1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trial = study.ask()
        _optuna_params(trial, space)
        study.tell(trial, float(rng.random()))
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def time_suggestions(
    sizes: tuple[int, ...], gp_max: int, repeats: int, gp_repeats: int
) -> dict[str, dict[int, float]]:
    """Median milliseconds per suggestion by sampler and history size (GP samplers up to ``gp_max`` trials)."""
    out: dict[str, dict[int, float]] = {
        "lmtune TPE (sampler)": {},
        "lmtune TPE": {},
        "Optuna TPE (default)": {},
        "lmtune GP (sampler)": {},
        "lmtune GP": {},
        "Optuna GP": {},
    }
    for n in sizes:
        out["lmtune TPE (sampler)"][n] = _time_lmtune_sampler(lambda: TPESampler(seed=0), n, repeats)
        out["lmtune TPE"][n] = _time_lmtune(lambda: TPESampler(seed=0), n, repeats)
        out["Optuna TPE (default)"][n] = _time_optuna("tpe", n, repeats)
        if n <= gp_max:
            out["lmtune GP (sampler)"][n] = _time_lmtune_sampler(lambda: GPSampler(seed=0), n, 2 * gp_repeats)
            out["lmtune GP"][n] = _time_lmtune(lambda: GPSampler(seed=0), n, gp_repeats)
            out["Optuna GP"][n] = _time_optuna("gp", n, gp_repeats)
    return out
