"""Multi-fidelity objectives the simulated executor replays: recorded learning curves and synthetic functions.

Each gives, for a configuration and an epoch (1 to ``max_resource``), the value reported after that epoch and the
simulated seconds the epoch costs. Values are deterministic for a given seed, so replays are reproducible.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError
from lmtune.space import CategoricalDistribution, FloatDistribution, SearchSpace
from lmtune.testing.functions import _H6_A, _H6_P, HARTMANN6_OPTIMUM

__all__ = [
    "DEFAULT_CURVES",
    "Evaluation",
    "MultiFidelityFunction",
    "MultiFidelityHartmann",
    "RecordedCurves",
    "benchmark_dir",
]

#: The recorded SST-2 fine-tuning curves, relative to :func:`benchmark_dir`.
DEFAULT_CURVES = "minilm_sst2_curves.jsonl.gz"


def benchmark_dir() -> Path:
    """Where recorded benchmark files live: ``$LMTUNE_BENCHMARK_DIR``, else ``../shared/benchmarks`` next to the
    repository this package is checked out in."""
    configured = os.environ.get("LMTUNE_BENCHMARK_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"


@dataclass(frozen=True)
class Evaluation:
    """One epoch of one configuration: the reported ``value``, its ``cost`` in simulated seconds, and ``extra``
    recorded metrics (e.g. the test accuracy, reported for the configuration a method returns)."""

    value: float
    cost: float
    extra: Mapping[str, float] = field(default_factory=dict)


class MultiFidelityFunction(ABC):
    """An objective observed after each epoch ``1..max_resource``."""

    name: str
    space: SearchSpace
    direction: str
    max_resource: int
    #: The best value at ``max_resource`` (recorded or known optimum), for regret.
    best_value: float

    @abstractmethod
    def evaluate(self, params: Mapping[str, Any], epoch: int) -> Evaluation:
        """The value after ``epoch`` epochs and the cost of that epoch."""


class RecordedCurves(MultiFidelityFunction):
    """Replays recorded fine-tuning curves (``benchmarks/README`` protocol: MiniLM on SST-2, 5 epochs).

    A suggested configuration is answered by the nearest recorded one (a nearest-neighbour surrogate): distances
    are taken in the unit encoding of numeric parameters (log for the learning rate, the batch size by its rank)
    plus ``categorical_weight`` for each differing categorical. Each epoch costs its recorded wall time.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        objective: str = "val_acc",
        report: tuple[str, ...] = ("test_acc",),
        categorical_weight: float = 0.25,
    ) -> None:
        path = Path(path) if path is not None else benchmark_dir() / DEFAULT_CURVES
        if not path.is_file():
            raise ConfigError(
                f"recorded curves not found at {path}; pass path=... or set LMTUNE_BENCHMARK_DIR to the folder "
                f"holding {DEFAULT_CURVES}"
            )
        with gzip.open(path, "rt") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        if not rows or objective not in rows[0]["curve"][0]:
            raise ConfigError(f"objective {objective!r} is not a metric of the curves in {path}")
        self.name = f"{rows[0].get('task', 'curves')}-curves"
        self.objective = objective
        self.report = report
        self.direction = "minimize" if objective.endswith("loss") else "maximize"
        self.configs = [row["config"] for row in rows]
        self.max_resource = min(len(row["curve"]) for row in rows)
        self.values = np.array([[e[objective] for e in row["curve"][: self.max_resource]] for row in rows])
        self.extras = [[{k: e[k] for k in report} for e in row["curve"]] for row in rows]
        times = np.array([[e["time_s"] for e in row["curve"][: self.max_resource]] for row in rows])
        self.costs = np.diff(times, axis=1, prepend=0.0)
        finals = self.values[:, -1]
        self.best_index = int(np.argmax(finals) if self.direction == "maximize" else np.argmin(finals))
        self.best_value = float(finals[self.best_index])
        self.space = SearchSpace(
            {
                "learning_rate": FloatDistribution(1e-6, 1e-2, log=True),
                "batch_size": CategoricalDistribution([8, 16, 32, 64, 128]),
                "optimizer": CategoricalDistribution(["adamw", "adam", "sgd", "adagrad"]),
                "weight_decay": FloatDistribution(0.0, 0.3),
                "warmup_ratio": FloatDistribution(0.0, 0.3),
                "lr_schedule": CategoricalDistribution(["linear", "cosine", "constant"]),
                "dropout": FloatDistribution(0.0, 0.5),
            }
        )
        self.categorical_weight = float(categorical_weight)
        self._numeric = ["learning_rate", "weight_decay", "warmup_ratio", "dropout"]
        self._categorical = ["optimizer", "lr_schedule"]
        self._table = np.array([self._numeric_point(c) for c in self.configs])

    def _numeric_point(self, params: Mapping[str, Any]) -> np.ndarray:
        point = [self.space[name].to_unit(params[name]) for name in self._numeric]
        sizes = self.space["batch_size"].choices  # type: ignore[attr-defined]
        point.append(sizes.index(params["batch_size"]) / (len(sizes) - 1))
        return np.array(point)

    def nearest(self, params: Mapping[str, Any]) -> int:
        """The index of the recorded configuration answering ``params``."""
        distance = np.sum((self._table - self._numeric_point(params)) ** 2, axis=1)
        for name in self._categorical:
            distance += self.categorical_weight * np.array([c[name] != params[name] for c in self.configs])
        return int(np.argmin(distance))

    def evaluate(self, params: Mapping[str, Any], epoch: int) -> Evaluation:
        row = self.nearest(params)
        return Evaluation(
            float(self.values[row, epoch - 1]), float(self.costs[row, epoch - 1]), self.extras[row][epoch - 1]
        )


# Hartmann-3 and -6 (Dixon & Szego 1978): minima -3.86278 and -3.32237 on the unit cube.
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_HARTMANN = {
    3: (
        np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]),
        1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]),
        -3.86278214782076,
    ),
    6: (_H6_A, _H6_P, HARTMANN6_OPTIMUM),
}
#: Fidelity quality presets: how much low epochs flatten the function (bias) and how noisy they are.
CORRELATIONS = {"good": (0.5, 0.1), "bad": (2.0, 0.4)}


class MultiFidelityHartmann(MultiFidelityFunction):
    """Hartmann-3/6 observed through a fidelity: at epoch ``e`` of ``max_resource`` the weights of the four bumps
    are lowered by ``bias * (1 - e / max_resource)`` and noise of scale ``noise * (1 - e / max_resource)`` is added,
    so the last epoch is the exact function. ``correlation`` "good" (bias 0.5, noise 0.1) keeps low epochs
    informative; "bad" (bias 2.0, noise 0.4) makes them mislead. Minimised. An epoch costs ``1 + x0`` seconds."""

    def __init__(self, dim: int = 3, correlation: str = "good", max_resource: int = 5, seed: int = 0) -> None:
        if dim not in _HARTMANN:
            raise ConfigError(f"dim must be 3 or 6, but got {dim!r}")
        if correlation not in CORRELATIONS:
            raise ConfigError(f"correlation must be one of {sorted(CORRELATIONS)}, but got {correlation!r}")
        self.name = f"mfh{dim}-{correlation}"
        self.dim = dim
        self.direction = "minimize"
        self.max_resource = max_resource
        self.seed = seed
        self.bias, self.noise = CORRELATIONS[correlation]
        self._a, self._p, self.best_value = _HARTMANN[dim]
        self.space = SearchSpace({f"x{i}": FloatDistribution(0.0, 1.0) for i in range(dim)})

    def _noise(self, x: np.ndarray, epoch: int) -> float:
        key = hashlib.blake2b(np.round(x, 12).tobytes() + bytes([epoch]), digest_size=8).digest()
        entropy = [self.seed, int.from_bytes(key, "little")]
        return float(np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy))).standard_normal())

    def evaluate(self, params: Mapping[str, Any], epoch: int) -> Evaluation:
        x = np.array([params[f"x{i}"] for i in range(self.dim)], dtype=float)
        gap = 1.0 - epoch / self.max_resource
        weights = _ALPHA - self.bias * gap
        value = -float(np.sum(weights * np.exp(-np.sum(self._a * (x - self._p) ** 2, axis=1))))
        value += self.noise * gap * self._noise(x, epoch)
        return Evaluation(value, 1.0 + float(x[0]))
