"""Benchmark objectives: multi-fidelity functions the simulated clock (:mod:`lmtune.executors.simulated`) replays.

:mod:`lmtune.benchmarking.curves` holds recorded fine-tuning curves and synthetic multi-fidelity functions,
:mod:`lmtune.benchmarking.lcbench` the LCBench tabular benchmark. They are objectives, not executors: a benchmark or
a test picks one and hands it to the clock.
"""

from __future__ import annotations

from lmtune.benchmarking.curves import (
    DEFAULT_CURVES,
    Evaluation,
    MultiFidelityFunction,
    MultiFidelityHartmann,
    RecordedCurves,
    benchmark_dir,
)

__all__ = [
    "DEFAULT_CURVES",
    "Evaluation",
    "MultiFidelityFunction",
    "MultiFidelityHartmann",
    "RecordedCurves",
    "benchmark_dir",
]
