"""The Ray executor on a local Ray runtime (real Ray worker processes, not local mode)."""

from __future__ import annotations

import os
from collections import Counter

import pytest
from conftest import HERE

import lmtune
from lmtune.executors import RayExecutor, Resources, RetryPolicy
from lmtune.samplers import RandomSampler
from lmtune.trial import TrialState

pytestmark = pytest.mark.ray

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray")
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()


def test_ray_runs_a_study_with_a_crashing_and_a_raising_trial(ray_runtime, tmp_path):
    import parallel_objectives

    storage = f"sqlite:///{tmp_path / 'ray.db'}"
    study = lmtune.create_study(
        storage=storage,
        study_name="ray",
        space=SPACE,
        sampler=RandomSampler(seed=1),
        retry=RetryPolicy(max_retries=1),
    )
    RayExecutor(resources=Resources(cpus_per_trial=1)).optimize(
        study, parallel_objectives.crashes_then_raises, total_trials=6
    )

    records = lmtune.load_study("ray", storage).trials
    by_state = Counter(r.state for r in records)
    assert by_state == {TrialState.COMPLETE: 6, TrialState.FAILED: 2}, [(r.number, r.state) for r in records]
    lost = next(r for r in records if r.number == 1)
    assert lost.failure_reason.startswith("worker lost: trial process died in Ray")
    retry = next(r for r in records if r.system_attrs.get("retry_of") == 1)
    assert retry.state is TrialState.COMPLETE and retry.params == lost.params
    raised = [r for r in records if r.failure_reason == "ValueError: bad configuration"]
    assert len(raised) == 1 and raised[0].number in (2, 3)
    assert not any(
        r.system_attrs.get("retry_of") == raised[0].number for r in records
    )  # errors are not retried
    # Trials ran in Ray's worker processes, not in this one.
    pids = {r.user_attrs["pid"] for r in records if "pid" in r.user_attrs}
    assert pids and os.getpid() not in pids


def test_ray_kills_a_trial_past_its_timeout(ray_runtime, tmp_path):
    import parallel_objectives

    storage = f"sqlite:///{tmp_path / 'timeout.db'}"
    study = lmtune.create_study(storage=storage, study_name="t", space=SPACE, sampler=RandomSampler(seed=1))
    RayExecutor(workers=2, trial_timeout=3).optimize(study, parallel_objectives.hangs_on_zero, total_trials=3)
    records = {r.number: r for r in study.trials}
    assert records[0].state is TrialState.FAILED and records[0].failure_reason.startswith("timeout")
    assert sum(r.state is TrialState.COMPLETE for r in records.values()) == 3


def test_the_checkpoint_budget_holds_for_trials_run_on_ray(ray_runtime, tmp_path):
    import parallel_objectives
    from checkpoint_budget_checks import assert_checkpoints_within_budget

    from lmtune.checkpoints import CheckpointBudget

    budget = CheckpointBudget(keep_best=2, max_bytes=2 * parallel_objectives.CHECKPOINT_BYTES)
    study = lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'budget.db'}",
        space=SPACE,
        sampler=RandomSampler(seed=0),
        checkpoint_budget=budget,
    )
    RayExecutor(workers=2).optimize(study, parallel_objectives.writes_checkpoint, n_trials=6)
    # Six checkpoints were written, three times what the budget allows.
    assert_checkpoints_within_budget(study, budget)
