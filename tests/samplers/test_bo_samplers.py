"""TPE, GP and auto: they optimise, respect conditions, follow priors early and spread parallel asks."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable

import numpy as np
import pytest

import lmtune
from lmtune.samplers import AutoSampler, GPSampler, RandomSampler, Sampler, TPESampler, sampler_from_config
from lmtune.space import SearchSpace
from lmtune.testing.functions import BENCHMARKS, CONDITIONAL_SPACE, conditional
from lmtune.trial import Trial


@pytest.fixture(autouse=True)
def _quiet_trial_logs():
    """Thousands of trials here: keep lmtune's per-trial INFO lines out, and restore the level for later tests."""
    logger = logging.getLogger("lmtune")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


MAKERS: dict[str, Callable[[int], Sampler]] = {
    "tpe": lambda seed: TPESampler(seed=seed),
    "gp": lambda seed: GPSampler(seed=seed, n_candidates=512),
    "auto": lambda seed: AutoSampler(seed=seed),
}


def _regret(sampler: Sampler, function: str, budget: int) -> float:
    bench = BENCHMARKS[function]
    study = lmtune.create_study(sampler=sampler, space=bench.space)
    study.optimize(bench.objective, n_trials=budget)
    return study.best_value - bench.optimum


# TPE is cheap but needs more trials than the GP (its start-up alone is 14 trials in 6-D).
BUDGETS = {"tpe": {"branin": 40, "hartmann6": 100}, "gp": {"branin": 30, "hartmann6": 40}}
BUDGETS["auto"] = BUDGETS["gp"]


@pytest.mark.parametrize(
    ("name", "function", "budget"),
    [(name, function, budget) for name in sorted(MAKERS) for function, budget in BUDGETS[name].items()],
)
def test_median_regret_beats_random_search(name: str, function: str, budget: int) -> None:
    seeds = range(5)
    ours = statistics.median(_regret(MAKERS[name](seed), function, budget) for seed in seeds)
    random = statistics.median(_regret(RandomSampler(seed=seed), function, budget) for seed in seeds)
    assert ours < 0.5 * random, (ours, random)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_conditional_parameters_appear_only_when_active(name: str) -> None:
    space = SearchSpace.from_dict(CONDITIONAL_SPACE)
    study = lmtune.create_study(sampler=MAKERS[name](0), space=space)
    study.optimize(conditional, n_trials=25)
    for trial in study.trials:
        assert set(trial.params) == {n for n in space if space.is_active(n, trial.params)}
        assert ("momentum" in trial.params) == (trial.params["optimizer"] == "sgd")
        assert ("beta2" in trial.params) == (trial.params["optimizer"] == "adam")
    assert study.best_value < 1.0


def _mean_distance_to(value: float, sampler: Sampler, prior: bool) -> float:
    spec = {"type": "float", "low": 0.0, "high": 1.0}
    if prior:
        spec = {**spec, "prior": {"value": value, "confidence": 0.9}}
    study = lmtune.create_study(sampler=sampler, space={f"x{i}": dict(spec) for i in range(3)})
    # The optimum is far from the prior: early trials follow the prior, not the data.
    study.optimize(lambda t: sum((v - 0.1) ** 2 for v in t.params.values()), n_trials=10)
    return float(np.mean([abs(v - value) for t in study.trials for v in t.params.values()]))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_priors_shift_early_suggestions_toward_the_prior(name: str) -> None:
    with_prior = _mean_distance_to(0.8, MAKERS[name](1), prior=True)
    without = _mean_distance_to(0.8, MAKERS[name](1), prior=False)
    assert with_prior < 0.5 * without, (with_prior, without)


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_parallel_asks_with_running_trials_are_distinct(name: str) -> None:
    space = {"x": {"type": "int", "low": 0, "high": 10}, "y": {"type": "int", "low": 0, "high": 10}}
    study = lmtune.create_study(sampler=MAKERS[name](2), space=space)
    study.optimize(lambda t: (t.params["x"] - 3) ** 2 + (t.params["y"] - 7) ** 2, n_trials=25)
    asked = [study.ask() for _ in range(4)]
    points = {(t.params["x"], t.params["y"]) for t in asked if t is not None}
    assert len(points) == 4


def test_auto_runs_a_small_grid_and_stops(caplog: pytest.LogCaptureFixture) -> None:
    space = {
        "a": {"type": "categorical", "choices": ["x", "y", "z"]},
        "b": {"type": "int", "low": 1, "high": 3},
    }
    study = lmtune.create_study(sampler=AutoSampler(seed=0), space=space)
    with caplog.at_level(logging.INFO, logger="lmtune"):
        study.optimize(lambda t: t.params["b"], n_trials=50)
    assert len(study.trials) == 9
    assert len({(t.params["a"], t.params["b"]) for t in study.trials}) == 9
    assert "using GridSampler" in caplog.text


def test_auto_prefers_tpe_for_many_parameters() -> None:
    space = SearchSpace.from_dict({f"x{i}": {"type": "float", "low": 0, "high": 1} for i in range(14)})
    sampler, reason = AutoSampler(seed=0).choose(space, lmtune.create_study(space=space).history())
    assert isinstance(sampler, TPESampler) and "14 parameters" in reason


def test_auto_switches_from_gp_to_tpe_as_the_study_grows(caplog: pytest.LogCaptureFixture) -> None:
    bench = BENCHMARKS["branin"]
    study = lmtune.create_study(sampler=AutoSampler(seed=0, gp_max_trials=12), space=bench.space)
    with caplog.at_level(logging.INFO, logger="lmtune"):
        study.optimize(bench.objective, n_trials=16)
    assert "using GPSampler" in caplog.text and "using TPESampler" in caplog.text
    assert caplog.text.index("using GPSampler") < caplog.text.index("using TPESampler")


def _define_by_run(trial: Trial) -> float:
    x = trial.suggest_float("x", -5.0, 10.0)
    kind = trial.suggest_categorical("kind", ["flat", "bowl"])
    if kind == "bowl":
        return (x - 2.0) ** 2 + (trial.suggest_float("width", 0.1, 10.0, log=True) - 1.0) ** 2
    return 30.0 + x


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_define_by_run_with_a_conditional_parameter(name: str) -> None:
    study = lmtune.create_study(sampler=MAKERS[name](3))
    study.optimize(_define_by_run, n_trials=30)
    for trial in study.trials:
        assert ("width" in trial.params) == (trial.params["kind"] == "bowl")
    assert study.best_value < 5.0


def test_sampler_from_config_knows_the_new_names_and_the_budget() -> None:
    auto = sampler_from_config({"name": "auto", "seed": 1}, n_trials=40)
    assert isinstance(auto, AutoSampler) and auto.n_trials == 40 and auto.seed == 1
    assert isinstance(sampler_from_config({"name": "tpe", "n_candidates": 48}), TPESampler)
    assert isinstance(sampler_from_config({"name": "gp", "seed": 2}), GPSampler)
    with pytest.raises(lmtune.ConfigError, match="n_candidates"):
        sampler_from_config({"name": "tpe", "n_candidates": 0})
