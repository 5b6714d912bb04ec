"""Keras Tuner's `hp` API answered by lmtune: the recorded space, conditional scopes, and values from trials."""

from __future__ import annotations

import pytest

import lmtune
from lmtune.exceptions import ConfigError
from lmtune.integrations.keras_hyperparameters import HyperParameters, discover_space
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution


def build(hp: HyperParameters) -> dict:
    """A hypermodel's hp calls, without Keras: what it would build is returned as a dict."""
    layers = []
    for i in range(hp.Int("layers", 1, 3)):
        layers.append(hp.Int(f"units_{i}", 8, 64, step=8))
    optimizer = hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", ["sgd"]):
        momentum = hp.Float("momentum", 0.0, 0.9, step=0.3)
    if hp.Boolean("decay"):
        with hp.conditional_scope("decay", [True]):
            rate = hp.Float("decay_rate", 1e-4, 1e-1, sampling="log")
    else:
        rate = None
    batch = hp.Int("batch_size", 16, 128, step=2, sampling="log")
    return {
        "layers": layers,
        "optimizer": optimizer,
        "momentum": momentum,
        "rate": rate,
        "batch": batch,
        "seed": hp.Fixed("seed", 7),
        "lr": hp.Float("lr", 1e-5, 1e-2, sampling="log"),
    }


def test_the_recorded_space_keeps_keras_tuners_values_and_conditions() -> None:
    space = discover_space(build)
    assert space["layers"] == IntDistribution(1, 3)
    assert space["units_0"] == IntDistribution(8, 64, step=8)
    assert space["momentum"] == FloatDistribution(0.0, 0.9, step=0.3)
    assert space["decay_rate"] == FloatDistribution(
        1e-4, 1e-1, log=True
    )  # found by opening the closed branch
    assert space["lr"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert space["batch_size"] == CategoricalDistribution([16, 32, 64, 128])  # a log step is a factor
    assert space["decay"] == CategoricalDistribution([False, True])
    assert "seed" not in space and "units_1" not in space  # Fixed is no parameter; units_1 needs layers >= 2
    assert space.conditions == {"momentum": {"optimizer": ("sgd",)}, "decay_rate": {"decay": (True,)}}


def test_a_trial_answers_each_call_and_inactive_parameters_are_none() -> None:
    study = lmtune.create_study(space=discover_space(build), seed=0)
    built = []
    for params in ({"optimizer": "adam", "decay": False, "layers": 3}, {"optimizer": "sgd", "decay": True}):
        study.enqueue(params)

    def objective(trial: lmtune.Trial) -> float:
        built.append((trial.params, build(HyperParameters.for_trial(trial))))
        return 0.0

    study.optimize(objective, n_trials=2)
    (params_adam, adam), (params_sgd, sgd) = built
    assert adam["momentum"] is None and adam["rate"] is None and len(adam["layers"]) == 3
    assert "momentum" not in params_adam and adam["seed"] == 7
    assert sgd["momentum"] == params_sgd["momentum"] in (0.0, 0.3, 0.6, 0.9)
    assert sgd["rate"] == params_sgd["decay_rate"] and 1e-4 <= sgd["rate"] <= 1e-1
    # units_1 and units_2 were not in the recorded space: they are suggested define-by-run and stored.
    stored = study.trials[0].params
    assert {"units_1", "units_2"} <= set(stored) and stored["units_2"] in range(8, 65, 8)


def test_the_same_seed_gives_the_same_configurations() -> None:
    def run(seed: int) -> list[dict]:
        study = lmtune.create_study(space=discover_space(build), sampler=lmtune.samplers.RandomSampler(seed))
        study.optimize(
            lambda trial: float(len(build(HyperParameters.for_trial(trial))["layers"])), n_trials=4
        )
        return [dict(r.params) for r in study.trials]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_fixed_values_rebuild_a_configuration_and_get_follows_keras_tuner() -> None:
    hp = HyperParameters.from_values({"optimizer": "sgd", "momentum": 0.6, "layers": 2, "units_1": 24})
    built = build(hp)
    assert built["momentum"] == 0.6 and built["layers"] == [8, 24]
    assert hp["optimizer"] == "sgd" and "decay_rate" not in hp
    adam = HyperParameters.from_values({"optimizer": "adam"})
    assert build(adam)["momentum"] is None and "momentum" not in adam
    with pytest.raises(ValueError, match="momentum is currently inactive"):
        adam.get("momentum")
    with pytest.raises(KeyError, match="decay_rate does not exist"):
        adam.get("decay_rate")  # its branch was not built


def test_bad_declarations_are_errors_naming_the_parameter() -> None:
    hp = HyperParameters.recording()
    with (
        pytest.raises(ConfigError, match="declare 'model' .* before the scope"),
        hp.conditional_scope("model", ["mlp"]),
    ):
        pass
    with pytest.raises(ConfigError, match=r"hp 'lr': sampling must be one of \['linear', 'log'\]"):
        hp.Float("lr", 1e-4, 1e-1, sampling="reverse_log")
    hp.Int("units", 8, 64)
    with pytest.raises(ConfigError, match="hp 'units' is declared twice with different ranges"):
        hp.Int("units", 8, 128)
