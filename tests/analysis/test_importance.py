"""Importance ranks the parameter that matters first, on functions whose variance decomposition is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lmtune
from lmtune.analysis.importance import fanova_importance, importance, marginal_importance
from lmtune.exceptions import ConfigError
from lmtune.samplers import RandomSampler
from lmtune.testing.functions import CONDITIONAL_SPACE, conditional

SPACE = {
    "a": {"type": "float", "low": 0.0, "high": 1.0},
    "b": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "c": {"type": "categorical", "choices": ["x", "y", "z"]},
    "d": {"type": "int", "low": 1, "high": 8},
}


def dominated(a: float, b: float, c: str, d: int) -> float:
    """Main-effect variances: a 8.4, b 0.33 (uniform in log10 b), c 0.016, d 0.013."""
    return 10 * math.sin(3 * a) + 0.5 * math.log10(b) + {"x": 0.0, "y": 0.3, "z": 0.1}[c] + 0.05 * d


@pytest.fixture(scope="module")
def dominated_study() -> lmtune.Study:
    study = lmtune.create_study(space=SPACE, sampler=RandomSampler(seed=3))
    study.optimize(lambda t: dominated(**t.params), n_trials=150)
    return study


@pytest.mark.parametrize("method", ["fanova", "marginal"])
def test_dominant_parameter_ranks_first(dominated_study: lmtune.Study, method: str) -> None:
    result = importance(dominated_study, method)
    assert result.ranked()[0] == "a"
    assert result.ranked()[1] == "b"
    assert result.mean["a"] > 0.8
    assert result.n_trials == 150


def test_fanova_matches_the_analytic_decomposition() -> None:
    """f = 4 x + y on the unit square (uniform x, y): main effects 16/12 and 1/12, shares 16/17 and 1/17."""
    study = lmtune.create_study(
        space={"x": {"type": "float", "low": 0, "high": 1}, "y": {"type": "float", "low": 0, "high": 1}},
        sampler=RandomSampler(seed=0),
    )
    study.optimize(lambda t: 4 * t.params["x"] + t.params["y"], n_trials=300)
    result = fanova_importance(study, seeds=(0, 1), n_trees=16)
    assert result.mean["x"] == pytest.approx(16 / 17, abs=0.05)
    assert result.mean["y"] == pytest.approx(1 / 17, abs=0.04)


def test_fanova_is_deterministic_and_spread_comes_from_seeds(dominated_study: lmtune.Study) -> None:
    first = fanova_importance(dominated_study, seeds=(0, 1, 2), n_trees=8)
    again = fanova_importance(dominated_study, seeds=(0, 1, 2), n_trees=8)
    assert first == again
    assert all(s >= 0 for s in first.std.values())
    assert any(s > 0 for s in first.std.values())
    single = fanova_importance(dominated_study, seeds=(0,), n_trees=8)
    assert all(s == 0 for s in single.std.values())


def test_conditional_parameters_are_handled() -> None:
    """In the conditional benchmark beta2 (adam only) has a huge quadratic penalty and dominates; momentum and
    beta2 are inactive in about half the trials each."""
    study = lmtune.create_study(space=CONDITIONAL_SPACE, sampler=RandomSampler(seed=1))
    study.optimize(conditional, n_trials=120)
    for method in ("fanova", "marginal"):
        result = importance(study, method)
        assert set(result.mean) == {"optimizer", "lr", "momentum", "beta2"}
        assert result.ranked()[0] == "beta2"
        assert all(np.isfinite(v) and 0 <= v <= 1 + 1e-9 for v in result.mean.values())


def test_define_by_run_study_uses_the_parameters_seen() -> None:
    study = lmtune.create_study(sampler=RandomSampler(seed=0))

    def objective(trial: lmtune.Trial) -> float:
        x = trial.suggest_float("x", -1, 1)
        kind = trial.suggest_categorical("kind", ["flat", "steep"])
        if kind == "steep":
            return 5 * trial.suggest_float("slope", 0, 1) + 0.01 * x
        return 0.01 * x

    study.optimize(objective, n_trials=80)
    result = marginal_importance(study)
    assert set(result.mean) == {"x", "kind", "slope"}
    assert result.ranked()[-1] == "x"


def test_errors_name_the_problem() -> None:
    study = lmtune.create_study(space=SPACE, sampler=RandomSampler(seed=0))
    with pytest.raises(ConfigError, match="at least 2 COMPLETE"):
        importance(study)
    study.optimize(lambda t: dominated(**t.params), n_trials=5)
    with pytest.raises(ConfigError, match="unknown parameter"):
        importance(study, params=["nope"])
    with pytest.raises(ConfigError, match="method must be one of"):
        importance(study, "shap")
