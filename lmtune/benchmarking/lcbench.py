"""LCBench through the YAHPO Gym surrogate, as a multi-fidelity objective for the simulated clock.

LCBench (Zimmer et al., TPAMI 2021) trains funnel-shaped MLPs on OpenML tasks for 52 epochs; YAHPO Gym (Pfisterer
et al., AutoML-Conf 2022) publishes an ONNX surrogate of its learning curves. This module queries that surrogate
directly with ``onnxruntime`` (imported only when an :class:`LCBench` is created, so the library does not need it):
7 hyperparameters, fidelity = epoch 1..52, objective = validation accuracy as a fraction (the surrogate answers in
percent), each epoch costing the increase of the surrogate's cumulative ``time`` output (seconds).

The files (``model.onnx``, ``encoding.json``, ``config_space.json``) are read from ``yahpo/lcbench`` under
:func:`~lmtune.benchmarking.curves.benchmark_dir` (``$LMTUNE_BENCHMARK_DIR``) unless a folder is given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from lmtune.benchmarking.curves import Evaluation, MultiFidelityFunction, benchmark_dir
from lmtune.exceptions import ConfigError
from lmtune.space import FloatDistribution, IntDistribution, SearchSpace

__all__ = ["BEST_VAL_ACCURACY", "LCBench", "lcbench_space", "search_best"]

#: The surrogate's continuous inputs, in its order (YAHPO Gym's ``cont_names`` for ``lcbench``).
INPUTS = (
    "epoch",
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "num_layers",
    "max_units",
    "max_dropout",
)
#: The surrogate's outputs, in its order (``time`` is cumulative seconds; accuracies in percent or fractions).
OUTPUTS = (
    "time",
    "val_accuracy",
    "val_cross_entropy",
    "val_balanced_accuracy",
    "test_cross_entropy",
    "test_balanced_accuracy",
)
MAX_EPOCH = 52

#: Highest validation accuracy (fraction) at epoch 52 found by ``search_best(instance)`` (200,000 random
#: configurations, then 20 rounds of local perturbations of the best 50); the regret reference.
BEST_VAL_ACCURACY = {
    "167190": 0.94008255,
    "189906": 0.95206422,
    "3945": 0.99657935,
}


def lcbench_space() -> SearchSpace:
    """LCBench's 7 hyperparameters with the ranges and log scales of its published configuration space."""
    return SearchSpace(
        {
            "batch_size": IntDistribution(16, 512, log=True),
            "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
            "momentum": FloatDistribution(0.1, 0.99),
            "weight_decay": FloatDistribution(1e-5, 1e-1),
            "num_layers": IntDistribution(1, 5),
            "max_units": IntDistribution(64, 1024, log=True),
            "max_dropout": FloatDistribution(0.0, 1.0),
        }
    )


@lru_cache(maxsize=4)
def _load(folder: str) -> tuple[Any, dict[str, int]]:
    """The ONNX session (one thread: benchmarks run one process per core) and the task-id encoding."""
    path = Path(folder)
    missing = [name for name in ("model.onnx", "encoding.json") if not (path / name).is_file()]
    if missing:
        raise ConfigError(
            f"the LCBench surrogate folder {folder!r} lacks {', '.join(missing)}; put the YAHPO Gym 'lcbench' files "
            "there or set LMTUNE_BENCHMARK_DIR to the folder holding yahpo/lcbench"
        )
    try:
        import onnxruntime
    except ImportError as error:
        raise ConfigError(
            "the LCBench objective needs onnxruntime: pip install onnxruntime (part of lmtune[dev])"
        ) from error
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(path / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )
    encoding = json.loads((path / "encoding.json").read_text())["OpenML_task_id"]
    return session, {k: int(v) for k, v in encoding.items() if k != "#na#"}


class LCBench(MultiFidelityFunction):
    """One LCBench instance (an OpenML task id, e.g. "167190") through the YAHPO Gym surrogate; maximised.

    ``evaluate`` answers the surrogate's validation accuracy after ``epoch`` (a fraction in [0, 1]), with the
    test and validation balanced accuracies as extras. The surrogate is deterministic, so ``seed`` is unused.
    ``best_value`` defaults to :data:`BEST_VAL_ACCURACY` (or a fresh :func:`search_best` for other instances).
    """

    def __init__(
        self,
        instance: str = "167190",
        folder: str | Path | None = None,
        best_value: float | None = None,
        seed: int = 0,
    ) -> None:
        self.folder = str(folder if folder is not None else benchmark_dir() / "yahpo" / "lcbench")
        self._session, encoding = _load(self.folder)
        instance = str(instance)
        if instance not in encoding:
            raise ConfigError(
                f"instance must be an OpenML task id of LCBench, but got {instance!r}; choose one of "
                f"{sorted(encoding, key=int)}"
            )
        self.instance = instance
        self.name = f"lcbench-{instance}"
        self.direction = "maximize"
        self.max_resource = MAX_EPOCH
        self.seed = seed
        self.space = lcbench_space()
        self._code = encoding[instance]
        self._cache: dict[tuple[Any, ...], np.ndarray] = {}
        if best_value is None:
            known = BEST_VAL_ACCURACY.get(instance)
            best_value = known if known else search_best(self)[0]
        self.best_value = float(best_value)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Raw surrogate outputs (columns :data:`OUTPUTS`) for rows of :data:`INPUTS` values."""
        x_cont = np.asarray(rows, dtype=np.float32).reshape(-1, len(INPUTS))
        x_cat = np.full((len(x_cont), 1), self._code, dtype=np.int32)
        return self._session.run(None, {"x_cat": x_cat, "x_cont": x_cont})[0]

    def curve(self, params: Mapping[str, Any]) -> np.ndarray:
        """Per epoch 1..52: validation accuracy, epoch cost (s), validation and test balanced accuracy."""
        key = tuple(params[name] for name in INPUTS[1:])
        found = self._cache.get(key)
        if found is None:
            epochs = np.arange(1, MAX_EPOCH + 1, dtype=float)[:, None]
            out = self.predict(np.hstack([epochs, np.tile(np.array(key, dtype=float), (MAX_EPOCH, 1))]))
            total = np.maximum.accumulate(np.maximum(out[:, 0], 0.0))
            # A surrogate's cumulative time can dip; an epoch costs at least 1% of the mean epoch.
            cost = np.maximum(np.diff(total, prepend=0.0), 0.01 * max(total[-1], 1e-3) / MAX_EPOCH)
            accuracy = np.clip(out[:, 1] / 100.0, 0.0, 1.0)
            balanced = np.clip(out[:, [3, 5]], 0.0, 1.0)
            found = np.column_stack([accuracy, cost, balanced])
            self._cache[key] = found
        return found

    def evaluate(self, params: Mapping[str, Any], epoch: int) -> Evaluation:
        row = self.curve(params)[epoch - 1]
        extra = {"val_balanced_accuracy": float(row[2]), "test_balanced_accuracy": float(row[3])}
        return Evaluation(float(row[0]), float(row[1]), extra)


def search_best(
    objective: LCBench, n_random: int = 200_000, rounds: int = 20, top: int = 50, seed: int = 0
) -> tuple[float, dict[str, Any]]:
    """The highest epoch-52 validation accuracy found by random search then local perturbation (in the unit
    encoding of each parameter, step 0.05), and its configuration: a reference for regret."""
    rng = np.random.default_rng(seed)
    names = list(objective.space)
    dists = [objective.space[name] for name in names]

    def score(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = np.array([[d.from_unit(float(u)) for d, u in zip(dists, row, strict=True)] for row in units])
        rows = np.column_stack(
            [np.full(len(values), MAX_EPOCH), values[:, [names.index(n) for n in INPUTS[1:]]]]
        )
        outs = np.concatenate(
            [objective.predict(chunk) for chunk in np.array_split(rows, max(1, len(rows) // 4096))]
        )
        return np.clip(outs[:, 1] / 100.0, 0.0, 1.0), values

    units = rng.random((n_random, len(names)))
    accuracy, values = score(units)
    for _ in range(rounds):
        best = np.argsort(-accuracy)[:top]
        units, accuracy, values = units[best], accuracy[best], values[best]
        moved = np.clip(
            np.repeat(units, 20, axis=0) + rng.normal(0.0, 0.05, (len(units) * 20, len(names))), 0, 1
        )
        new_accuracy, new_values = score(moved)
        units = np.vstack([units, moved])
        accuracy = np.concatenate([accuracy, new_accuracy])
        values = np.vstack([values, new_values])
    index = int(np.argmax(accuracy))
    params = {
        name: (int(v) if isinstance(d, IntDistribution) else float(v))
        for name, d, v in zip(names, dists, values[index], strict=True)
    }
    return float(accuracy[index]), params
