"""LCBench through the YAHPO Gym ONNX surrogate: loads, answers fractions, learns with epochs, bounded by its best."""

from __future__ import annotations

import numpy as np
import pytest

from lmtune.benchmarking.curves import benchmark_dir
from lmtune.exceptions import ConfigError
from lmtune.executors.simulated import Driver, Job, SimulatedExecutor

pytest.importorskip("onnxruntime", reason="the LCBench objective needs onnxruntime (pip install onnxruntime)")
if not (benchmark_dir() / "yahpo" / "lcbench" / "model.onnx").is_file():
    pytest.skip(
        "no LCBench surrogate under $LMTUNE_BENCHMARK_DIR/yahpo/lcbench (../shared/benchmarks by default)",
        allow_module_level=True,
    )

from lmtune.benchmarking.lcbench import BEST_VAL_ACCURACY, LCBench  # noqa: E402

#: A well-performing LCBench configuration (moderate learning rate, SGD momentum, small dropout).
GOOD = {
    "batch_size": 64,
    "learning_rate": 0.01,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "num_layers": 3,
    "max_units": 256,
    "max_dropout": 0.1,
}


@pytest.mark.parametrize("instance", sorted(BEST_VAL_ACCURACY))
def test_values_are_fractions_and_improve_with_epochs(instance):
    objective = LCBench(instance)
    curve = [objective.evaluate(GOOD, epoch) for epoch in range(1, objective.max_resource + 1)]
    values = np.array([e.value for e in curve])
    assert objective.max_resource == 52 and objective.direction == "maximize"
    assert np.all((values >= 0.0) & (values <= 1.0))
    assert all(0.0 <= e.extra["test_balanced_accuracy"] <= 1.0 and e.cost > 0 for e in curve)
    # Monotone-ish: the last quarter beats the first epochs, and few epochs lose more than half a point.
    assert values[-13:].mean() > values[:3].mean() + 0.02
    assert np.sum(np.diff(values) < -0.005) <= 5
    assert values[-1] <= objective.best_value


def test_random_configurations_stay_below_the_reference_best():
    objective = LCBench("167190")
    rng = np.random.default_rng(0)
    finals = [objective.evaluate(objective.space.from_unit(rng.random(7)), 52).value for _ in range(300)]
    assert max(finals) <= objective.best_value
    assert np.std(finals) > 0.01  # the configurations really differ


def test_same_query_same_answer_and_the_clock_runs_it():
    first, second = LCBench("3945"), LCBench("3945")
    assert first.evaluate(GOOD, 10) == second.evaluate(GOOD, 10)
    result = SimulatedExecutor(first, n_workers=2, max_epochs=60).run_driver(_FullTrainings(first))
    assert result.epochs_used == 60 and result.incumbents()


def test_unknown_instance_names_the_choices():
    with pytest.raises(ConfigError, match="instance must be an OpenML task id.*167190"):
        LCBench("999")


class _FullTrainings(Driver):
    """Random configurations trained to the last epoch, for the clock."""

    def __init__(self, objective: LCBench) -> None:
        self._objective, self._rng, self._n = objective, np.random.default_rng(0), 0

    def start(self):
        self._n += 1
        params = self._objective.space.from_unit(self._rng.random(7))
        return Job(None, params, 1, self._objective.max_resource, self._n)

    def report(self, job, epoch, value):
        return True

    def finish(self, job, epoch, value):
        pass
