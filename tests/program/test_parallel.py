"""Program objectives under the executors: the local pool with GPU slots, and Ray (real worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from program_fixtures import REPO_ROOT, SCRIPT_ENV, SCRIPTS, SPACE, behave

import lmtune
from lmtune.executors import RayExecutor, Resources
from lmtune.executors.gpus import FAKE_GPUS_ENV
from lmtune.schedulers import MedianStopping
from lmtune.trial import TrialState


def gpus_seen(record: lmtune.TrialRecord) -> str | None:
    """CUDA_VISIBLE_DEVICES as the trial's script saw it (its first stdout line says)."""
    first = (Path(record.user_attrs["program_logs"]) / "stdout.log").read_text().splitlines()[0]
    return json.loads(first.removeprefix("starting "))["cuda"]


def test_a_study_file_runs_scripts_in_workers_each_on_its_own_gpu_slot(tmp_path: Path) -> None:
    """`lmtune run` with `workers:` and GPU slots: each trial process loads the program from the file."""
    study_file = tmp_path / "study.yaml"
    study_file.write_text(
        yaml.safe_dump(
            {
                "study": "pool",
                "storage": "sqlite:///pool.db",
                "direction": "maximize",
                "program": {
                    "command": ["python", "behave.py", "--mode", "json", "--pause", "0.5", "--x", "{x}"],
                    "metric": "score",
                    "cwd": str(SCRIPTS),
                    "env": SCRIPT_ENV,
                },
                "space": SPACE,
                "sampler": {"name": "random", "seed": 0},
                "n_trials": 2,
                "workers": 2,
                "resources": {"gpus_per_trial": 1},
            }
        )
    )
    env = {**os.environ, FAKE_GPUS_ENV: "2", "PYTHONPATH": str(REPO_ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "lmtune.cli", "run", str(study_file)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    records = lmtune.load_study("pool", f"sqlite:///{tmp_path / 'pool.db'}").trials
    assert [r.state for r in records] == [TrialState.COMPLETE] * 2, [r.failure_reason for r in records]
    assert sorted(gpus_seen(r) for r in records) == ["0", "1"]  # both ran at once, one GPU each
    for record in records:
        assert record.value == pytest.approx(3 * record.params["x"])


@pytest.mark.ray
def test_ray_runs_program_trials_and_prunes_them(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
        logging_level="WARNING",
    )
    try:
        storage = f"sqlite:///{tmp_path / 'ray.db'}"
        study = lmtune.create_study(
            storage=storage,
            study_name="ray",
            direction="maximize",
            space=SPACE,
            seed=0,
            scheduler=MedianStopping(min_resource=1, n_startup_trials=1),
        )
        study.enqueue({"x": 0.9})
        study.enqueue({"x": 0.1})
        objective = behave("--mode", "json", "--steps", "4", "--pause", "0.2")
        RayExecutor(workers=1, resources=Resources(cpus_per_trial=1)).optimize(study, objective, n_trials=2)
    finally:
        ray.shutdown()
    good, bad = lmtune.load_study("ray", storage).trials
    assert good.state is TrialState.COMPLETE and good.value == pytest.approx(3.6)
    assert bad.state is TrialState.PRUNED and max(bad.intermediate) < 4  # stopped below the median at step 1
