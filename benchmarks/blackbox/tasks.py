"""Benchmark tasks: a space (study-file form), a loss to minimise and its known optimum.

Synthetic functions come from :mod:`lmtune.testing.functions`, BBOB functions from the ``coco-experiment`` package
(instance = seed + 1, 5-D on [-5, 5]^5), and ``minilm-sst2`` replays the recorded MiniLM fine-tuning curves at full
fidelity (loss = 1 - validation accuracy after 5 epochs of the nearest recorded configuration; the recorded test
accuracy of that configuration is reported as well).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lmtune.space import SearchSpace
from lmtune.testing import functions

from . import log_categorical

__all__ = ["LOG_CATEGORICAL", "TASKS", "Task", "make_task"]

BBOB_FUNCTIONS = {"bbob-f1": 1, "bbob-f8": 8, "bbob-f15": 15, "bbob-f21": 21}
BBOB_DIM = 5


@dataclass(frozen=True)
class Task:
    """A minimisation problem with its optimum; ``extra`` gives recorded side metrics of a configuration."""

    name: str
    space: Mapping[str, Any]
    optimum: float
    loss: Callable[[Mapping[str, Any]], float]
    extra: Callable[[Mapping[str, Any]], dict[str, float]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def search_space(self) -> SearchSpace:
        return SearchSpace.from_dict(self.space)


def _synthetic(name: str) -> Task:
    bench = functions.BENCHMARKS[name]
    values: dict[str, Callable[[Mapping[str, Any]], float]] = {
        "branin": lambda p: functions.branin_value(p["x"], p["y"]),
        "hartmann6": lambda p: functions.hartmann6_value(np.array([p[f"x{i}"] for i in range(6)])),
        "mixed": lambda p: functions.mixed_value(p["lr"], p["layers"], p["dropout"], p["activation"]),
        "conditional": lambda p: functions.conditional_value(
            p["optimizer"], p["lr"], p.get("momentum"), p.get("beta2")
        ),
    }
    return Task(name, bench.space, bench.optimum, values[name])


def _bbob(name: str, seed: int) -> Task:
    import cocoex

    problem = cocoex.BareProblem("bbob", BBOB_FUNCTIONS[name], BBOB_DIM, seed + 1)
    space = {f"x{i}": {"type": "float", "low": -5.0, "high": 5.0} for i in range(BBOB_DIM)}
    return Task(
        name,
        space,
        float(problem.best_value()),
        lambda p: float(problem(np.array([p[f"x{i}"] for i in range(BBOB_DIM)]))),
        meta={"instance": seed + 1},
    )


@functools.lru_cache(maxsize=1)
def _curves() -> Any:
    from lmtune.benchmarking.curves import RecordedCurves

    return RecordedCurves()


def _minilm() -> Task:
    curves = _curves()
    epochs = curves.max_resource
    space = curves.space.to_dict()
    return Task(
        "minilm-sst2",
        space,
        1.0 - curves.best_value,
        lambda p: 1.0 - curves.evaluate(p, epochs).value,
        extra=lambda p: dict(curves.evaluate(p, epochs).extra),
    )


#: Log-scaled floats with categoricals, functions the test suite does not use (see ``log_categorical``).
LOG_CATEGORICAL = {
    "finetune8": (log_categorical.FINETUNE8_SPACE, log_categorical.finetune8_value),
    "lora6": (log_categorical.LORA6_SPACE, log_categorical.lora6_value),
}
TASKS = ["branin", "hartmann6", "mixed", "conditional", *BBOB_FUNCTIONS, "minilm-sst2", *LOG_CATEGORICAL]


def make_task(name: str, seed: int) -> Task:
    """The task ``name`` for ``seed`` (BBOB instances depend on the seed, the others do not)."""
    if name in BBOB_FUNCTIONS:
        return _bbob(name, seed)
    if name == "minilm-sst2":
        return _minilm()
    if name in LOG_CATEGORICAL:
        space, loss = LOG_CATEGORICAL[name]
        return Task(name, space, 0.0, loss)
    return _synthetic(name)
