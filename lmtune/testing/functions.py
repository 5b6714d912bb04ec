"""Synthetic objectives with known optima, for demos, tests and benchmarks.

Each objective takes a trial. Where the study declares a space the objective reads ``trial.params``; otherwise it
suggests its own parameters, so ``objective: lmtune.testing.functions:branin`` works with or without ``space:``.
Every function has a matching ``*_SPACE`` (study-file form) and ``*_OPTIMUM`` (the global minimum value).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmtune.space import SearchSpace
from lmtune.trial import Trial

__all__ = [
    "BENCHMARKS",
    "SyntheticFunction",
    "branin",
    "conditional",
    "hartmann6",
    "mixed",
    "rosenbrock",
]


def _read(trial: Trial, space: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's parameters: declared ones if the study has a space, otherwise suggested from ``space``."""
    if trial.study.space is not None:
        return trial.params
    declared = SearchSpace.from_dict(space)
    values: dict[str, Any] = {}
    for name in declared:
        if not declared.is_active(name, values):
            continue
        dist = declared[name].to_dict()
        kind = dist.pop("type")
        dist.pop("prior", None)
        dist.pop("grid_points", None)
        if kind == "float":
            values[name] = trial.suggest_float(
                name, dist["low"], dist["high"], step=dist.get("step"), log=dist.get("log", False)
            )
        elif kind == "int":
            values[name] = trial.suggest_int(
                name, dist["low"], dist["high"], step=dist.get("step", 1), log=dist.get("log", False)
            )
        else:
            values[name] = trial.suggest_categorical(name, dist["choices"])
    return values


# Branin-Hoo: three global minima of 0.397887 at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475).
BRANIN_SPACE = {
    "x": {"type": "float", "low": -5.0, "high": 10.0},
    "y": {"type": "float", "low": 0.0, "high": 15.0},
}
BRANIN_OPTIMUM = 0.397887357729738


def branin_value(x: float, y: float) -> float:
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return a * (y - b * x**2 + c * x - r) ** 2 + s * (1 - t) * math.cos(x) + s


def branin(trial: Trial) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887."""
    p = _read(trial, BRANIN_SPACE)
    return branin_value(p["x"], p["y"])


# Hartmann-6 on [0, 1]^6: minimum -3.32237 at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).
HARTMANN6_SPACE = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(6)}
HARTMANN6_OPTIMUM = -3.322368011415515
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6_value(x: np.ndarray) -> float:
    inner = np.sum(_H6_A * (np.asarray(x, dtype=float) - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


def hartmann6(trial: Trial) -> float:
    """Hartmann-6 on [0, 1]^6; minimum -3.32237."""
    p = _read(trial, HARTMANN6_SPACE)
    return hartmann6_value(np.array([p[f"x{i}"] for i in range(6)]))


# Rosenbrock in 4 dimensions on [-2, 2]^4: minimum 0 at (1, 1, 1, 1).
ROSENBROCK_SPACE = {f"x{i}": {"type": "float", "low": -2.0, "high": 2.0} for i in range(4)}
ROSENBROCK_OPTIMUM = 0.0


def rosenbrock_value(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def rosenbrock(trial: Trial) -> float:
    """Rosenbrock on [-2, 2]^4; minimum 0 at (1, 1, 1, 1)."""
    p = _read(trial, ROSENBROCK_SPACE)
    return rosenbrock_value(np.array([p[f"x{i}"] for i in range(4)]))


# A mixed space as in fine-tuning: a log-scaled rate, an int, a stepped float and a categorical.
MIXED_SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 8},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05},
    "activation": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
}
MIXED_OPTIMUM = 0.0
_ACTIVATION_PENALTY = {"gelu": 0.0, "relu": 0.3, "tanh": 1.0}


def mixed_value(lr: float, layers: int, dropout: float, activation: str) -> float:
    return (
        (math.log10(lr) + 3.0) ** 2
        + 0.25 * (layers - 4) ** 2
        + 10.0 * (dropout - 0.1) ** 2
        + _ACTIVATION_PENALTY[activation]
    )


def mixed(trial: Trial) -> float:
    """Log-float, int, stepped float and categorical; minimum 0 at lr=1e-3, layers=4, dropout=0.1, gelu."""
    p = _read(trial, MIXED_SPACE)
    return mixed_value(p["lr"], p["layers"], p["dropout"], p["activation"])


# A conditional space: the optimizer decides which parameters exist.
CONDITIONAL_SPACE = {
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    "lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
    "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": ["sgd"]}},
    "beta2": {"type": "float", "low": 0.9, "high": 0.9999, "when": {"optimizer": ["adam"]}},
}
CONDITIONAL_OPTIMUM = 0.0


def conditional_value(
    optimizer: str, lr: float, momentum: float | None = None, beta2: float | None = None
) -> float:
    if optimizer == "sgd":
        assert momentum is not None
        return (math.log10(lr) + 1.0) ** 2 + 4.0 * (momentum - 0.9) ** 2 + 0.2
    assert beta2 is not None
    return (math.log10(lr) + 3.0) ** 2 + 1e4 * (beta2 - 0.999) ** 2


def conditional(trial: Trial) -> float:
    """sgd (lr, momentum) or adam (lr, beta2); minimum 0 with adam, lr=1e-3, beta2=0.999; sgd's best is 0.2."""
    p = _read(trial, CONDITIONAL_SPACE)
    return conditional_value(p["optimizer"], p["lr"], p.get("momentum"), p.get("beta2"))


@dataclass(frozen=True)
class SyntheticFunction:
    """A benchmark function with its space (study-file form) and known minimum."""

    name: str
    objective: Callable[[Trial], float]
    space: Mapping[str, Any]
    optimum: float

    def search_space(self) -> SearchSpace:
        return SearchSpace.from_dict(self.space)


BENCHMARKS: dict[str, SyntheticFunction] = {
    f.name: f
    for f in (
        SyntheticFunction("branin", branin, BRANIN_SPACE, BRANIN_OPTIMUM),
        SyntheticFunction("hartmann6", hartmann6, HARTMANN6_SPACE, HARTMANN6_OPTIMUM),
        SyntheticFunction("rosenbrock", rosenbrock, ROSENBROCK_SPACE, ROSENBROCK_OPTIMUM),
        SyntheticFunction("mixed", mixed, MIXED_SPACE, MIXED_OPTIMUM),
        SyntheticFunction("conditional", conditional, CONDITIONAL_SPACE, CONDITIONAL_OPTIMUM),
    )
}
