"""Fused execution of a real SST-2 study (``execution: {fuse: auto}``): every trial ends with the outcome it would
have alone, a completed trial's evaluations equal those of training it separately, ASHA stops leave their group
as PRUNED, unfusable trials run alone, members are heartbeated, Ctrl-C fails the running members; the study file
keys are validated and the command takes the fused path."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from checkpoint_budget_checks import assert_checkpoints_within_budget, checkpoint_folder_sizes
from click.testing import CliRunner

import lmtune
from lmtune.checkpoints import CheckpointBudget
from lmtune.cli import main
from lmtune.config import build_spec
from lmtune.exceptions import ConfigError
from lmtune.executors.fused import FusedExecutor, fused_executor_for
from lmtune.executors.gpus import FAKE_GPUS_ENV
from lmtune.executors.settings import execution_from_config
from lmtune.nlp.task import load_task
from lmtune.schedulers.successive_halving import SuccessiveHalving
from lmtune.trial import TrialState
from tests.nlp.conftest import DATA

TRAINING = {
    "epochs": 1,
    "hidden_size": 32,
    "num_heads": 2,
    "num_layers": 2,
    "ffn_size": 64,
    "dropout": 0.0,
    "batch_size": 16,
}
SPEC = {
    "type": "classification",
    "model": {"architecture": "bert", "vocab_size": 600},
    "data": {
        "root": "sst2",
        "train": "train.tsv.gz",
        "validation": "dev.tsv.gz",
        "text": "sentence",
        "max_train_examples": 96,
        "max_eval_examples": 32,
    },
    "max_length": 32,
    "eval_every_steps": 2,
    "patience": None,
    "metric": "loss",
    "training": TRAINING,
}
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "seed": {"type": "int", "low": 0, "high": 100},
}
# Three of one architecture (one group), one with another depth (a second group), one that cannot be fused. On
# this slice the tiny model overfits at once: the slowest learner has the lowest validation loss, and ASHA stops
# the two later members of the group at its first rung (2 steps).
TRIALS = [
    {"learning_rate": 1e-6, "seed": 3},
    {"learning_rate": 2e-3, "seed": 2},
    {"learning_rate": 3e-3, "seed": 1},
    {"learning_rate": 3e-3, "seed": 4, "num_layers": 1},
    {"learning_rate": 3e-3, "seed": 5, "optimizer": "adagrad"},
]


@pytest.fixture(scope="module")
def task() -> Any:
    """The task, trained on one torch thread while this module's tests run (tiny models are fastest so)."""
    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is missing at {DATA}; set LMTUNE_SHARED")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_task(SPEC, DATA)
    torch.set_num_threads(threads)


def _study(tmp: Path, name: str, **options: Any) -> Any:
    space = {
        **SPACE,
        "num_layers": {"type": "categorical", "choices": [1, 2]},
        "optimizer": {"type": "categorical", "choices": ["adamw", "adagrad"]},
    }
    return lmtune.create_study(
        direction="minimize", storage=f"sqlite:///{tmp / name}.db", space=space, **options
    )


def _enqueue(study: Any, trials: list[dict[str, Any]]) -> None:
    for params in trials:
        study.enqueue({"num_layers": 2, "optimizer": "adamw", **params})


def test_a_fused_study_ends_every_trial_as_separate_runs_would(
    task: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    asha = SuccessiveHalving(max_resource=6, min_resource=2, reduction_factor=2, resource="step")
    study = _study(tmp_path, "fused", scheduler=asha, heartbeat_interval=0.05)
    _enqueue(study, TRIALS)
    beats: list[float] = []

    def heartbeats_of_running_members(study: Any, record: Any) -> None:
        """Seconds between each running trial's start and its last heartbeat."""
        beats.extend(r.heartbeat_at - r.started_at for r in study.get_trials([TrialState.RUNNING]))

    with caplog.at_level(logging.INFO):
        FusedExecutor(task, group_size=3).optimize(
            study, n_trials=len(TRIALS), callbacks=[heartbeats_of_running_members]
        )
    records = study.trials
    states = [r.state for r in records]
    assert len(records) == 5 and all(r.state.is_finished() for r in records), states
    assert states[:3] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED], states
    assert TrialState.FAILED not in states
    assert beats and max(beats) > 0  # stamped while it trained in its group
    messages = caplog.text
    assert "trial 4 runs alone, not fused: optimizer 'adagrad' has no fused implementation" in messages
    assert "trial 3 joins a fused group of 1" in messages  # its own group: another depth
    # Trial 3 was asked only when a member of the full group left.
    assert min(r.finished_at for r in records[:3]) <= records[3].started_at

    # Trained separately, with no scheduler: the completed trial's evaluations are the same, and the pruned
    # trial's are the first of them.
    alone = _study(tmp_path, "alone")
    _enqueue(alone, [TRIALS[0], TRIALS[2]])
    alone.optimize(task, n_trials=2)
    for fused, separate in ((records[0], alone.trials[0]), (records[2], alone.trials[1])):
        fused_history = fused.user_attrs["eval_history"]
        separate_history = separate.user_attrs["eval_history"]
        assert [h["step"] for h in separate_history] == [2, 4, 6]
        assert len(fused_history) == (3 if fused.state is TrialState.COMPLETE else 1)
        for f, a in zip(fused_history, separate_history, strict=False):
            assert f["step"] == a["step"] and f["accuracy"] == a["accuracy"]
            assert f["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)
            assert f["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-5)
    assert records[0].value == pytest.approx(alone.trials[0].value, rel=1e-4)


def test_ctrl_c_fails_the_running_members_interrupted(task: Any, tmp_path: Path) -> None:
    study = _study(tmp_path, "interrupt")
    _enqueue(study, [TRIALS[0], {**TRIALS[1], "num_layers": 1}, TRIALS[2]])

    def interrupt(study: Any, record: Any) -> None:
        raise KeyboardInterrupt

    # Members of one group leave together; trial 1 (a shorter model in its own group) is stepped after them.
    with pytest.raises(KeyboardInterrupt):
        FusedExecutor(task, group_size=3).optimize(study, n_trials=3, callbacks=[interrupt])
    records = study.trials
    assert not study.get_trials([TrialState.RUNNING])
    assert [r.failure_reason for r in records if r.state is TrialState.FAILED] == ["interrupted"] * 2
    assert sum(r.state is TrialState.COMPLETE for r in records) == 1


def test_the_checkpoint_budget_holds_in_a_fused_study(task: Any, tmp_path: Path) -> None:
    budget = CheckpointBudget(keep_best=1, max_bytes=0)
    study = _study(tmp_path, "budget", checkpoint_budget=budget)
    _enqueue(study, TRIALS[:3])
    FusedExecutor(task, group_size=3).optimize(study, n_trials=3)
    # Each trial saved its best checkpoint; only the best trial's is left.
    assert_checkpoints_within_budget(study, CheckpointBudget(keep_best=1, max_bytes=sys.maxsize))
    assert list(checkpoint_folder_sizes(study)) == [Path(study.best_trial.checkpoint_dir).name]


def test_limits_end_the_run(task: Any, tmp_path: Path) -> None:
    study = _study(tmp_path, "limits")
    FusedExecutor(task, group_size=2).optimize(study, total_trials=0)
    assert study.trials == []
    with pytest.raises(ConfigError, match="timeout"):
        FusedExecutor(task).optimize(study, timeout=-1)
    with pytest.raises(ConfigError, match="max_failed_trials must be a positive integer"):
        FusedExecutor(task).optimize(study, max_failed_trials=0)
    with pytest.raises(ConfigError, match="group_size"):
        FusedExecutor(task, group_size=0)
    assert FusedExecutor(task).group_size == 8  # on the CPU


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            {"execution": {"fuse": "maybe"}},
            "execution.fuse: must be 'auto', 'true' or 'false', but got 'maybe'",
        ),
        (
            {"execution": {"group_size": 0}},
            "execution.group_size: must be greater than or equal to 1, but got 0",
        ),
        ({"execution": {"fuse": "auto", "size": 3}}, "execution.size: unknown key"),
        (
            {"execution": {"fuse": True}, "workers": 2},
            "`execution.fuse: true` trains fused groups in the calling",
        ),
        (
            {"resources": {"gpus_per_trial": "auto"}, "executor": "ray"},
            "resources.gpus_per_trial: auto is applied",
        ),
        (
            {"resources": {"gpus_per_trial": "auto", "processes_per_trial": 2}},
            "remove `processes_per_trial` \\(2\\)",
        ),
    ],
)
def test_execution_keys_are_validated(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        execution_from_config(**keys)


def test_fusing_is_chosen_only_where_it_can_run(task: Any) -> None:
    assert execution_from_config(execution={"fuse": True}).fuse == "true"
    assert fused_executor_for(execution_from_config(), task) is None
    assert fused_executor_for(execution_from_config(execution={"fuse": "auto"}), None) is None
    assert fused_executor_for(execution_from_config(execution={"fuse": "auto"}, workers=2), task) is None
    chosen = fused_executor_for(execution_from_config(execution={"fuse": "auto", "group_size": 4}), task)
    assert isinstance(chosen, FusedExecutor) and chosen.group_size == 4
    with pytest.raises(ConfigError, match="fuses the trials of a `task:` study"):
        build_spec({"study": "s", "objective": "math:sqrt", "execution": {"fuse": True}}, Path("s.yaml"))


def _noop_objective(trial: Any) -> float:
    return 0.0


def test_without_gpus_auto_packing_runs_one_trial_per_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """(Packing on GPUs is tested in test_auto_packing.py.)"""
    from lmtune.executors.local import LocalExecutor

    monkeypatch.setenv(FAKE_GPUS_ENV, "0")
    settings = execution_from_config(resources={"gpus_per_trial": "auto"})
    assert settings.resources.auto_packing and not settings.in_process
    from lmtune.executors.ref import StudyRef

    ref = StudyRef("sqlite:///unused.db", "packing", objective=_noop_objective, sampler=None)
    with caplog.at_level(logging.INFO):
        assert LocalExecutor(resources=settings.resources)._start(ref) == 1
    assert "no GPU found (LMTUNE_FAKE_GPUS=0); one trial per worker" in caplog.text


def test_the_command_trains_a_task_study_fused(task: Any, tmp_path: Path) -> None:
    data = {**SPEC["data"], "root": str(DATA / "sst2"), "max_train_examples": 32, "max_eval_examples": 16}
    study_file = tmp_path / "fused.yaml"
    study_file.write_text(
        "study: cli-fused\n"
        f"storage: sqlite:///{tmp_path / 'cli.db'}\n"
        f"task: {{type: classification, model: {{architecture: bert, vocab_size: 300}}, data: {data},\n"
        f"       max_length: 24, training: {TRAINING}}}\n"
        f"space: {SPACE}\n"
        "sampler: {name: random, seed: 0}\n"
        "n_trials: 2\n"
        "execution: {fuse: auto}\n"
    )
    result = CliRunner().invoke(main, ["run", str(study_file)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "joins a fused group of 2" in result.output
    study = lmtune.load_study("cli-fused", f"sqlite:///{tmp_path / 'cli.db'}")
    assert [r.state for r in study.trials] == [TrialState.COMPLETE] * 2
