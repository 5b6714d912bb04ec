"""The public surface: a refactor must not drop a documented name."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import lmtune

PUBLIC = {
    "lmtune": [
        "create_study",
        "load_study",
        "Study",
        "StudyOptions",
        "Trial",
        "TrialRecord",
        "TrialState",
        "SearchSpace",
        "FloatDistribution",
        "IntDistribution",
        "CategoricalDistribution",
        "Prior",
        "TrialPruned",
        "LmtuneError",
        "ConfigError",
        "StorageError",
        "TooManyFailedTrialsError",
        "__version__",
        "report",
    ],
    "lmtune.program": [
        "ProgramObjective",
        "ProgramFailed",
        "program_objective",
        "program_from_config",
        "report",
    ],
    "lmtune.samplers": [
        "Sampler",
        "GridSampler",
        "RandomSampler",
        "SobolSampler",
        "TPESampler",
        "GPSampler",
        "AutoSampler",
        "sampler_from_config",
    ],
    "lmtune.schedulers": [
        "Scheduler",
        "Decision",
        "Action",
        "TrialStart",
        "NoScheduler",
        "scheduler_from_config",
        "default_multifidelity_scheduler",
        "as_scheduler",
    ],
    "lmtune.storage": ["Storage", "InMemoryStorage", "get_storage", "SCHEMA_VERSION"],
    "lmtune.exceptions": [
        "LmtuneError",
        "ConfigError",
        "StorageError",
        "SchemaVersionError",
        "StudyNotFoundError",
        "DuplicatedStudyError",
        "TrialStateError",
        "TrialPruned",
        "TooManyFailedTrialsError",
        "MissingDependencyError",
    ],
    "lmtune.testing.functions": ["branin", "hartmann6", "rosenbrock", "mixed", "conditional", "BENCHMARKS"],
    "lmtune.testing.samplers": ["SamplerConformance"],
    "lmtune.testing.schedulers": ["SchedulerConformance"],
    "lmtune.history": ["Direction", "TrialHistory"],
    "lmtune.lifecycle": ["RunLimits", "finish_trial", "run_trial"],
    "lmtune.executors": [
        "EXECUTORS",
        "Executor",
        "FusedExecutor",
        "InProcessExecutor",
        "LocalExecutor",
        "RayExecutor",
        "SimulatedExecutor",
        "StudyRef",
        "RetryPolicy",
        "make_executor",
    ],
    "lmtune.benchmarking": [
        "MultiFidelityFunction",
        "MultiFidelityHartmann",
        "RecordedCurves",
        "benchmark_dir",
    ],
    # The benchmark objectives' former home.
    "lmtune.executors.curves": ["MultiFidelityHartmann", "RecordedCurves", "benchmark_dir"],
    "lmtune.executors.lcbench": ["LCBench"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_exist_and_are_listed(module: str) -> None:
    mod = importlib.import_module(module)
    for name in PUBLIC[module]:
        assert hasattr(mod, name), f"{module}.{name} is missing"
        if name != "__version__":
            assert name in mod.__all__, f"{module}.{name} is not in __all__"


def test_every_error_derives_from_the_root() -> None:
    from lmtune import exceptions

    for name in PUBLIC["lmtune.exceptions"]:
        assert issubclass(getattr(exceptions, name), exceptions.LmtuneError)


def test_core_imports_nothing_heavy() -> None:
    code = (
        "import sys, lmtune, lmtune.samplers, lmtune.storage, lmtune.study;"
        "print([m for m in ('torch', 'transformers', 'ray', 'plotly', 'sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


SCRIPT = """
import json, lmtune
from lmtune.testing.functions import hartmann6
study = lmtune.create_study(seed=11)
study.optimize(hartmann6, n_trials=6)
print(json.dumps([t.params for t in study.trials]))
"""


def test_same_seed_same_trials_in_a_subprocess() -> None:
    from lmtune.testing.functions import hartmann6

    study = lmtune.create_study(seed=11)
    study.optimize(hartmann6, n_trials=6)
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [t.params for t in study.trials]
