"""``sampler: auto`` hands categorical-heavy spaces to TPE and keeps the GP for continuous ones."""

from __future__ import annotations

import logging
import pickle

import pytest

import lmtune
from lmtune.samplers import AutoSampler, GPSampler, TPESampler
from lmtune.space import SearchSpace

# The shape of a fine-tuning space: a log learning rate, two bounded floats and three many-valued categoricals.
CATEGORICAL_HEAVY = {
    "learning_rate": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "batch_size": {"type": "categorical", "choices": [8, 16, 32, 64, 128]},
    "optimizer": {"type": "categorical", "choices": ["adamw", "adam", "sgd", "adagrad"]},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.3},
    "lr_schedule": {"type": "categorical", "choices": ["linear", "cosine", "constant"]},
}
CONTINUOUS = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(6)}
# One three-valued and one two-valued categorical: below the threshold, the GP keeps it.
FEW_CATEGORICALS = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
}


def _choice(spec: dict, **options: int) -> tuple[object, str]:
    space = SearchSpace.from_dict(spec)
    history = lmtune.create_study(space=space).history()
    return AutoSampler(seed=0, n_trials=100, **options).choose(space, history)


def test_categorical_heavy_space_gets_tpe_with_the_reason() -> None:
    sampler, reason = _choice(CATEGORICAL_HEAVY)
    assert isinstance(sampler, TPESampler)
    assert "3 categorical parameters" in reason and "batch_size, optimizer, lr_schedule" in reason


@pytest.mark.parametrize("spec", [CONTINUOUS, FEW_CATEGORICALS], ids=["continuous", "few-categoricals"])
def test_continuous_or_lightly_categorical_space_keeps_the_gp(spec: dict) -> None:
    sampler, _ = _choice(spec)
    assert isinstance(sampler, GPSampler)


def test_the_threshold_is_an_option_and_survives_pickling() -> None:
    sampler, _ = _choice(CATEGORICAL_HEAVY, tpe_min_categoricals=4)
    assert isinstance(sampler, GPSampler)
    restored = pickle.loads(pickle.dumps(AutoSampler(seed=0, tpe_min_categoricals=4)))
    assert restored.tpe_min_categoricals == 4 and restored.describe()["tpe_min_categoricals"] == 4
    with pytest.raises(lmtune.exceptions.ConfigError, match="tpe_min_categoricals"):
        AutoSampler(seed=0, tpe_min_categoricals=0)


def test_the_study_logs_the_choice_once(caplog: pytest.LogCaptureFixture) -> None:
    space = SearchSpace.from_dict(CATEGORICAL_HEAVY)
    study = lmtune.create_study(sampler=AutoSampler(seed=0, n_trials=12), space=space)
    with caplog.at_level(logging.INFO, logger="lmtune"):
        study.optimize(lambda trial: trial.params["learning_rate"], n_trials=12)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sampler auto:")]
    assert lines == [lines[0]] and "TPESampler" in lines[0] and "categorical" in lines[0]
