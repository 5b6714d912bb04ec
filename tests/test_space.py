from __future__ import annotations

import math

import numpy as np
import pytest

from lmtune.exceptions import ConfigError
from lmtune.space import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    Prior,
    SearchSpace,
    distribution_from_dict,
)

OPTIMIZER_SPACE = {
    "optimizer": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": ["sgd"]}},
    "nesterov": {"type": "categorical", "choices": [True, False], "when": {"momentum": [0.0, 0.9]}},
    "layers": {"type": "int", "low": 1, "high": 8, "step": 1},
}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 3, "high": 1}, "low=3, high=1"),
        ({"type": "float", "low": float("nan"), "high": 1}, "finite"),
        ({"type": "float", "low": 0, "high": float("inf")}, "finite"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "low > 0"),
        ({"type": "int", "low": -2, "high": 8, "log": True}, "low > 0"),
        ({"type": "float", "low": 0, "high": 1, "step": 0}, "step=0"),
        ({"type": "float", "low": 0, "high": 1, "step": 2}, "step=2"),
        ({"type": "int", "low": 0, "high": 4, "step": -1}, "step=-1"),
        ({"type": "int", "low": 0.5, "high": 4}, "0.5"),
        ({"type": "categorical", "choices": []}, "empty"),
        ({"type": "categorical", "choices": ["a", "a"]}, "distinct"),
        ({"type": "gaussian", "low": 0, "high": 1}, "'gaussian'"),
        ({"type": "float", "low": 0}, "needs high"),
        ({"type": "float", "low": 0, "high": 1, "bogus": 1}, "bogus"),
        ({"type": "float", "low": 0, "high": 1, "prior": {"value": 2, "confidence": 0.5}}, "prior value 2"),
        ({"type": "float", "low": 0, "high": 1, "prior": {"value": 0.5, "confidence": 1.5}}, "1.5"),
    ],
)
def test_invalid_distributions_quote_the_bad_value(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        distribution_from_dict(spec)
    assert message in str(info.value)


def test_space_errors_name_the_parameter() -> None:
    with pytest.raises(ConfigError, match=r"space\.lr: .*low=1, high=0"):
        SearchSpace.from_dict({"lr": {"type": "float", "low": 1, "high": 0}})
    with pytest.raises(ConfigError, match="unknown parent 'optimiser'"):
        SearchSpace.from_dict({"m": {"type": "float", "low": 0, "high": 1, "when": {"optimiser": ["sgd"]}}})
    with pytest.raises(ConfigError, match="non-empty"):
        SearchSpace.from_dict({"": {"type": "float", "low": 0, "high": 1}})
    with pytest.raises(ConfigError, match="'adam' is not in"):
        SearchSpace.from_dict(
            {"opt": ["sgd"], "m": {"type": "float", "low": 0, "high": 1, "when": {"opt": ["adam"]}}}
        )
    with pytest.raises(ConfigError, match="cycle"):
        SearchSpace.from_dict(
            {
                "a": {"type": "categorical", "choices": [1, 2], "when": {"b": [1]}},
                "b": {"type": "categorical", "choices": [1, 2], "when": {"a": [1]}},
            }
        )


def test_numbers_written_as_strings_are_numbers() -> None:
    dist = distribution_from_dict({"type": "float", "low": "1e-5", "high": "1e-3", "log": True})
    assert isinstance(dist, FloatDistribution)
    assert dist.low == pytest.approx(1e-5) and dist.high == pytest.approx(1e-3)


def test_json_round_trip_keeps_everything() -> None:
    space = SearchSpace.from_dict(
        {
            **OPTIMIZER_SPACE,
            "dropout": {
                "type": "float",
                "low": 0,
                "high": 0.5,
                "step": 0.1,
                "prior": {"value": 0.1, "confidence": 0.5},
            },
            "warmup": {"type": "float", "low": 0, "high": 0.2, "grid_points": 3},
            "head": {"type": "categorical", "choices": [None, [1, 2], {"k": "v"}, 3.5]},
        }
    )
    again = SearchSpace.from_json(space.to_json())
    assert again == space
    assert again["dropout"].prior == Prior(0.1, 0.5)
    assert again.conditions["momentum"] == {"optimizer": ("sgd",)}
    assert list(again) == list(space)


def test_parents_come_first() -> None:
    space = SearchSpace.from_dict(
        {"momentum": {"type": "float", "low": 0, "high": 1, "when": {"opt": ["sgd"]}}, "opt": ["sgd", "adam"]}
    )
    assert list(space) == ["opt", "momentum"]


def test_unit_cube_round_trip_over_random_points() -> None:
    space = SearchSpace.from_dict(OPTIMIZER_SPACE)
    rng = np.random.default_rng(0)
    for _ in range(200):
        params = space.from_unit(rng.random(len(space)))
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        space.validate(params)
        again = space.from_unit(np.nan_to_num(space.to_unit(params), nan=0.5))
        for name, value in params.items():
            if isinstance(value, float):
                assert again[name] == pytest.approx(value, rel=1e-9)
            else:
                assert again[name] == value


def test_unit_encoding_marks_inactive_as_nan_and_is_uniform_over_values() -> None:
    space = SearchSpace.from_dict(OPTIMIZER_SPACE)
    u = space.to_unit({"optimizer": "adamw", "lr": 1e-3, "layers": 3})
    names = list(space)
    assert math.isnan(u[names.index("momentum")])
    assert u[names.index("lr")] == pytest.approx(0.5)
    ints = IntDistribution(1, 4)
    counts = np.bincount([ints.from_unit(x) for x in np.linspace(0, 1, 4000, endpoint=False)], minlength=5)
    assert counts[1:].tolist() == [1000, 1000, 1000, 1000]


def test_log_int_and_stepped_float_values_stay_legal() -> None:
    log_int = IntDistribution(1, 1024, log=True)
    stepped = FloatDistribution(0.0, 1.0, step=0.1)
    for u in np.linspace(0, 1, 101):
        assert log_int.contains(log_int.from_unit(u))
        value = stepped.from_unit(u)
        assert stepped.contains(value)
        assert value == round(value, 10)
    assert stepped.grid_values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert FloatDistribution(0.0, 1.05, step=0.25).high == 1.0


def test_grid_respects_conditions() -> None:
    space = SearchSpace(
        {
            "opt": CategoricalDistribution(["sgd", "adam"]),
            "momentum": FloatDistribution(0.0, 0.9, step=0.45),
            "lr": FloatDistribution(1e-4, 1e-2, log=True, grid_points=3),
        },
        conditions={"momentum": {"opt": ["sgd"]}},
    )
    grid = space.grid()
    assert len(grid) == 3 * 3 + 3
    assert all(("momentum" in p) == (p["opt"] == "sgd") for p in grid)
    assert sorted({p["lr"] for p in grid}) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert len({tuple(sorted(p.items())) for p in grid}) == len(grid)


def test_float_without_step_cannot_be_gridded() -> None:
    with pytest.raises(ConfigError, match="step` or `grid_points"):
        SearchSpace.from_dict({"x": {"type": "float", "low": 0, "high": 1}}).grid()


def test_validate_catches_unknown_inactive_missing_and_out_of_range() -> None:
    space = SearchSpace.from_dict(OPTIMIZER_SPACE)
    with pytest.raises(ConfigError, match="unknown parameter"):
        space.validate({"optimizer": "sgd", "lr": 1e-3, "momentum": 0.5, "layers": 2, "x": 1})
    with pytest.raises(ConfigError, match="inactive"):
        space.validate({"optimizer": "adamw", "lr": 1e-3, "momentum": 0.5, "layers": 2})
    with pytest.raises(ConfigError, match="'momentum' is missing"):
        space.validate({"optimizer": "sgd", "lr": 1e-3, "layers": 2})
    with pytest.raises(ConfigError, match="parameter 'lr'"):
        space.validate({"optimizer": "adamw", "lr": 1.0, "layers": 2})
    assert space.validate({"lr": 1e-3}, partial=True) == {"lr": 1e-3}
    assert space.validate({"optimizer": "adamw", "lr": 1e-3, "layers": 2.0})["layers"] == 2


def test_small_grid_detection() -> None:
    assert SearchSpace.from_dict({"a": [1, 2, 3], "b": {"type": "int", "low": 0, "high": 3}}).is_small_grid(
        12
    )
    assert not SearchSpace.from_dict(
        {"a": [1, 2, 3], "b": {"type": "int", "low": 0, "high": 4}}
    ).is_small_grid(12)
    assert not SearchSpace.from_dict({"x": {"type": "float", "low": 0, "high": 1}}).is_small_grid(1000)
