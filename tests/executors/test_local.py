"""The local process pool: GPU slots seen by each trial, torchrun-style ranks, timeouts, crashes and retries."""

from __future__ import annotations

import os

import parallel_objectives
import pytest

import lmtune
from lmtune.exceptions import ConfigError
from lmtune.executors import LocalExecutor, Resources, RetryPolicy
from lmtune.executors.gpus import FAKE_GPUS_ENV, GpuSlots
from lmtune.samplers import RandomSampler
from lmtune.trial import TrialState

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


def _study(tmp_path, **options):
    return lmtune.create_study(
        storage=f"sqlite:///{tmp_path / 'pool.db'}",
        study_name="pool",
        space=SPACE,
        sampler=RandomSampler(seed=0),
        **options,
    )


def _env(record, name):
    return record.user_attrs.get(name)


def test_quarter_gpus_spread_trials_over_the_least_loaded_gpus():
    slots = GpuSlots(["0", "1"], 0.25)
    taken = [slots.acquire() for _ in range(8)]
    assert taken == [["0"], ["1"]] * 4 and slots.capacity == 8
    assert slots.acquire() is None  # four trials per GPU at most
    slots.release(["1"])
    assert slots.acquire() == ["1"]


def test_whole_gpus_are_never_shared():
    slots = GpuSlots(["0", "1", "2"], 2)
    assert slots.acquire() == ["0", "1"] and slots.acquire() is None and slots.capacity == 1
    with pytest.raises(ConfigError, match="gpus_per_trial` is 4, but this machine has 3 GPU"):
        GpuSlots(["0", "1", "2"], 4)


def test_each_trial_sees_its_share_of_the_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv(FAKE_GPUS_ENV, "2")
    study = _study(tmp_path)
    LocalExecutor(workers=4, resources=Resources(gpus_per_trial=0.5)).optimize(
        study, parallel_objectives.environment, total_trials=4
    )
    records = study.trials
    # Four trials started at once on two GPUs, two per GPU, alternating.
    assert [_env(r, "CUDA_VISIBLE_DEVICES") for r in records] == ["0", "1", "0", "1"]
    assert len({_env(r, "pid") for r in records}) == 4 and os.getpid() not in {
        _env(r, "pid") for r in records
    }
    assert all(_env(r, "RANK") is None for r in records)  # single-process trials get no rank variables


def test_no_gpu_per_trial_hides_the_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    study = _study(tmp_path)
    LocalExecutor(workers=1, resources=Resources(gpus_per_trial=0)).optimize(
        study, parallel_objectives.environment, total_trials=1
    )
    assert _env(study.trials[0], "CUDA_VISIBLE_DEVICES") == ""


@pytest.mark.slow
def test_a_two_gpu_trial_trains_data_parallel_with_gloo(tmp_path, monkeypatch):
    monkeypatch.setenv(FAKE_GPUS_ENV, "2")  # no GPU here: the two "GPUs" only decide the process count
    study = _study(tmp_path)
    LocalExecutor(resources=Resources(gpus_per_trial=2)).optimize(
        study, parallel_objectives.ddp_train, total_trials=1
    )
    (record,) = study.trials
    assert record.state is TrialState.COMPLETE, record.failure_reason
    assert record.user_attrs == {"ranks_in_sync": True, "world_size": 2}
    assert sorted(record.intermediate) == [0, 1, 2, 3, 4]  # each step reported once, by rank 0
    assert record.intermediate[4] < record.intermediate[0]


def test_a_hung_trial_is_killed_at_its_timeout(tmp_path):
    study = _study(tmp_path)
    LocalExecutor(workers=2, trial_timeout=2).optimize(
        study, parallel_objectives.hangs_on_zero, total_trials=3
    )
    records = {r.number: r for r in study.trials}
    assert records[0].state is TrialState.FAILED
    assert records[0].failure_reason == "timeout: the trial ran longer than trial_timeout=2 s and was killed"
    assert sum(r.state is TrialState.COMPLETE for r in records.values()) == 3
    hung_pid = records[0].system_attrs["process"]["pid"]
    with pytest.raises(ProcessLookupError):
        os.kill(hung_pid, 0)


def test_a_crashed_trial_is_retried_from_its_checkpoint(tmp_path):
    study = _study(tmp_path, retry=RetryPolicy(max_retries=1))
    LocalExecutor(workers=1).optimize(study, parallel_objectives.writes_checkpoint_then_dies, total_trials=1)
    first, retry = study.trials
    assert first.state is TrialState.FAILED
    assert first.failure_reason == "worker lost: trial process killed by SIGKILL"
    assert retry.state is TrialState.COMPLETE and retry.params == first.params
    assert retry.system_attrs["retry_of"] == 0 and retry.system_attrs["resume_from"] == first.checkpoint_dir
    assert retry.user_attrs["resumed_state"] == "step 7"


def test_a_pool_needs_a_storage_other_processes_can_open():
    study = lmtune.create_study(space=SPACE)
    with pytest.raises(ConfigError, match="other processes cannot open"):
        LocalExecutor(workers=2).optimize(study, parallel_objectives.noop, total_trials=2)


def test_a_local_objective_is_refused_before_any_trial_starts(tmp_path):
    study = _study(tmp_path)
    with pytest.raises(ConfigError, match="top level of an importable module"):
        LocalExecutor(workers=2).optimize(study, lambda trial: 0.0, total_trials=2)
    assert study.trials == []
