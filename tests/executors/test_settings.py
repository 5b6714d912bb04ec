"""The study file's execution keys: what is accepted, and errors that name the key, the value and the fix."""

from __future__ import annotations

import pytest

from lmtune.config import build_spec
from lmtune.exceptions import ConfigError
from lmtune.executors import Resources, execution_from_config, make_executor
from lmtune.executors.local import LocalExecutor

BASE = {"study": "s", "objective": "lmtune.testing.functions:branin", "storage": "memory://"}


def test_a_study_file_carries_its_execution_settings(tmp_path):
    spec = build_spec(
        {
            **BASE,
            "workers": 4,
            "resources": {"gpus_per_trial": 0.25},
            "trial_timeout": 600,
            "retry": {"max_retries": 2},
            "heartbeat": {"interval": 1, "grace_period": 10},
        },
        tmp_path / "s.yaml",
    )
    execution = spec.execution
    assert execution.workers == 4 and execution.trial_timeout == 600 and execution.max_retries == 2
    assert execution.resources == Resources(gpus_per_trial=0.25) and execution.resources.processes == 1
    assert (execution.heartbeat.interval, execution.heartbeat.grace_period) == (1, 10)
    assert isinstance(make_executor(execution), LocalExecutor)


def test_without_execution_keys_trials_run_in_the_calling_process(tmp_path):
    execution = build_spec(BASE, tmp_path / "s.yaml").execution
    assert execution.in_process and make_executor(execution) is None
    assert (execution.heartbeat.interval, execution.heartbeat.grace_period) == (5, 30)


def test_two_gpus_per_trial_means_two_processes():
    assert Resources.from_config({"gpus_per_trial": 2}).processes == 2
    assert Resources.from_config({"processes_per_trial": 3}).processes == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers: must be greater than or equal to 1, but got 0"),
        ({"resources": {"gpus_per_trial": 1.5}}, "above 1 must be a whole number of GPUs, but got 1.5"),
        (
            {"resources": {"gpus_per_trial": -1}},
            "resources.gpus_per_trial: must be a number >= 0",
        ),
        (
            {"resources": {"gpus": 1}},
            "resources.gpus: unknown key; remove it or fix its spelling (allowed: cpus_per_trial, gpus_per_trial",
        ),
        ({"executor": {"name": "dask"}}, "executor.name: must be 'local' or 'ray', but got 'dask'"),
        ({"executor": {"name": "local", "address": "auto"}}, "executor: `address` is an option of the ray"),
        ({"retry": {"max_retries": -1}}, "retry.max_retries: must be greater than or equal to 0, but got -1"),
        ({"trial_timeout": 0}, "trial_timeout: must be greater than 0, but got 0"),
        (
            {"heartbeat": {"interval": 5, "grace_period": 2}},
            "heartbeat: `grace_period` (2 s) must be longer than `interval` (5 s)",
        ),
    ],
)
def test_bad_execution_settings_name_the_key(options, message):
    with pytest.raises(ConfigError) as error:
        execution_from_config(**options)
    assert message in str(error.value)
