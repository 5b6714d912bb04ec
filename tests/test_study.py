from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

import lmtune
from lmtune.exceptions import ConfigError, DuplicatedStudyError, TooManyFailedTrialsError
from lmtune.samplers import GridSampler, RandomSampler, SobolSampler
from lmtune.storage import InMemoryStorage
from lmtune.testing.functions import BRANIN_SPACE, CONDITIONAL_SPACE, branin, conditional
from lmtune.trial import TrialState


def quadratic(trial: lmtune.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


def test_create_study_defaults_to_memory_and_a_generated_name() -> None:
    study = lmtune.create_study()
    assert isinstance(study.storage, InMemoryStorage)
    assert study.study_name.startswith("study-")
    assert study.direction == "minimize"
    assert study.attrs["provenance"]["python"]


def test_optimize_runs_that_many_more_trials_and_finds_the_best() -> None:
    study = lmtune.create_study(seed=0)
    study.optimize(quadratic, n_trials=30)
    study.optimize(quadratic, n_trials=5)
    assert len(study.trials) == 35
    assert [t.number for t in study.trials] == list(range(35))
    values = [t.value for t in study.trials]
    assert study.best_value == min(values)
    assert study.best_params == study.trials[values.index(min(values))].params


def test_maximize_picks_the_largest() -> None:
    study = lmtune.create_study(direction="maximize", seed=1)
    study.optimize(quadratic, n_trials=10)
    assert study.best_value == max(t.value for t in study.trials)


def test_declarative_space_gives_all_params_before_the_objective_runs() -> None:
    seen = []

    def objective(trial: lmtune.Trial) -> float:
        seen.append(trial.params)
        return conditional(trial)

    study = lmtune.create_study(space=CONDITIONAL_SPACE, seed=3)
    study.optimize(objective, n_trials=20)
    for params in seen:
        assert {"optimizer", "lr"} <= set(params)
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        assert ("beta2" in params) == (params["optimizer"] == "adam")
    assert study.trials[0].distributions["lr"].log


def test_same_seed_same_trials_different_seed_different_trials() -> None:
    def run(seed: int) -> list[dict]:
        study = lmtune.create_study(seed=seed)
        study.optimize(branin, n_trials=8)
        return [t.params for t in study.trials]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_nan_inf_and_non_numbers_fail_the_trial_and_the_study_goes_on() -> None:
    returns = iter([math.nan, math.inf, "high", None, 1.5])
    study = lmtune.create_study()
    study.optimize(lambda t: next(returns), n_trials=5)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAILED] * 4 + [TrialState.COMPLETE]
    assert "not a finite number" in study.trials[0].failure_reason
    assert "'high'" in study.trials[2].failure_reason
    assert study.best_value == 1.5


def test_exceptions_fail_the_trial_with_the_reason_and_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    def objective(trial: lmtune.Trial) -> float:
        if trial.number in (1, 4):
            raise RuntimeError("boom")
        return 1.0

    study = lmtune.create_study()
    study.optimize(objective, n_trials=3)
    assert study.trials[1].state is TrialState.FAILED
    assert study.trials[1].failure_reason == "RuntimeError: boom"
    assert "Traceback" in caplog.text and "boom" in caplog.text
    with pytest.raises(RuntimeError):
        study.optimize(objective, n_trials=3, catch=())
    assert study.trials[-1].state is TrialState.FAILED


def test_too_many_failures_in_a_row_stop_the_run() -> None:
    study = lmtune.create_study()
    with pytest.raises(TooManyFailedTrialsError, match="4 trials failed in a row"):
        study.optimize(lambda t: 1 / 0, n_trials=100, max_failed_trials=4)
    assert len(study.trials) == 4


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_max_failed_trials_must_be_positive_on_every_path(tmp_path: Path, limit: object) -> None:
    from lmtune.executors import LocalExecutor

    study = lmtune.create_study(storage=f"sqlite:///{tmp_path / 'limit.db'}")
    message = "max_failed_trials must be a positive integer \\(or None for no limit\\), but got"
    with pytest.raises(ConfigError, match=message):
        study.optimize(quadratic, n_trials=5, max_failed_trials=limit)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        LocalExecutor(workers=2).optimize(study, quadratic, n_trials=5, max_failed_trials=limit)  # type: ignore[arg-type]
    assert study.trials == []  # refused before any trial started


def test_no_failure_limit_runs_every_trial() -> None:
    study = lmtune.create_study()
    study.optimize(lambda t: 1 / 0, n_trials=12, max_failed_trials=None)
    assert [r.state for r in study.trials] == [TrialState.FAILED] * 12


def test_studies_whose_names_read_alike_get_their_own_checkpoint_folders(tmp_path: Path) -> None:
    from lmtune.checkpoints import CheckpointBudget

    storage = f"sqlite:///{tmp_path / 'alike.db'}"
    studies = [
        lmtune.create_study(
            storage=storage,
            study_name=name,
            space={"x": {"type": "float", "low": 0, "high": 1}},
            seed=0,
            checkpoint_budget=CheckpointBudget(keep_best=1, max_bytes=0),
        )
        for name in ("ck a", "ck_a")
    ]

    def saves(trial: lmtune.Trial) -> float:
        (trial.checkpoint_dir / "weights.bin").write_text(trial.study.study_name)
        return trial.params["x"]

    studies[0].optimize(saves, n_trials=3)
    studies[1].optimize(saves, n_trials=3)  # its checkpoint budget must not delete the first study's folders
    roots = [s.checkpoint_root for s in studies]
    assert roots[0] != roots[1] and roots[0].parent == roots[1].parent == tmp_path / "alike_checkpoints"
    for study in studies:
        kept = Path(study.best_trial.checkpoint_dir)
        assert kept.parent == study.checkpoint_root
        assert (kept / "weights.bin").read_text() == study.study_name
        assert sorted(p.name for p in study.checkpoint_root.glob("trial_*")) == [kept.name]


def test_a_checkpoint_folder_owned_by_another_study_is_refused(tmp_path: Path) -> None:
    from lmtune.checkpoints import claim_root

    claim_root(tmp_path, "postgresql://db-one/lmtune", "ck")
    claim_root(tmp_path, "postgresql://db-one/lmtune", "ck")  # its owner may claim it again
    with pytest.raises(
        ConfigError, match="belongs to study 'ck' in postgresql://db-one/lmtune; give study 'ck'"
    ):
        claim_root(tmp_path, "postgresql://db-two/lmtune", "ck")
    secret = tmp_path / "secret"
    claim_root(secret, "postgresql+psycopg://me:hunter2@db/lmtune", "ck")
    claim_root(secret, "postgresql+psycopg://me:hunter2@db/lmtune", "ck")  # masked alike, so still its owner
    assert "hunter2" not in (secret / ".lmtune-study.json").read_text()


def test_returning_after_should_stop_is_pruned_with_the_last_value() -> None:
    class StopAtTwo(lmtune.schedulers.Scheduler):
        def on_report(self, trial, history):
            action = (
                lmtune.schedulers.Action.STOP if trial.last_step >= 2 else lmtune.schedulers.Action.CONTINUE
            )
            return lmtune.schedulers.Decision(action, "test")

    def objective(trial: lmtune.Trial) -> float:
        for step in range(10):
            trial.report(10.0 - step, step)
            if trial.should_stop():
                break
        return 0.0

    study = lmtune.create_study(scheduler=StopAtTwo())
    study.optimize(objective, n_trials=1)
    record = study.trials[0]
    assert record.state is TrialState.PRUNED
    assert record.value == 8.0
    assert record.intermediate == {0: 10.0, 1: 9.0, 2: 8.0}


def test_raising_trial_pruned_records_pruned() -> None:
    def objective(trial: lmtune.Trial) -> float:
        trial.report(0.5, 0)
        raise lmtune.TrialPruned()

    study = lmtune.create_study()
    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert study.trials[0].value == 0.5


def test_report_rejects_bad_values_and_steps() -> None:
    study = lmtune.create_study()
    trial = study.ask()
    with pytest.raises(ConfigError, match="finite"):
        trial.report(float("nan"), 0)
    with pytest.raises(ConfigError, match="step"):
        trial.report(1.0, -1)


def test_ask_tell_and_enqueue_first() -> None:
    study = lmtune.create_study(space=BRANIN_SPACE, sampler=SobolSampler(0))
    study.enqueue({"x": 3.0, "y": 2.0})
    study.enqueue({"x": 1.0})
    first = study.ask()
    assert first.params == {"x": 3.0, "y": 2.0}
    second = study.ask()
    assert second.params["x"] == 1.0 and 0 <= second.params["y"] <= 15
    study.tell(first, 1.0)
    study.tell(second.number, 2.0)
    third = study.ask()
    study.tell(third, state=TrialState.FAILED, failure_reason="manual")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAILED]
    with pytest.raises(ConfigError, match="not in"):
        study.enqueue({"x": 99.0})


def test_tell_twice_is_an_error_and_keeps_the_first_result() -> None:
    study = lmtune.create_study()
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(lmtune.StorageError):
        study.tell(trial, 2.0)
    assert study.trials[0].value == 1.0


def test_define_by_run_reuses_the_joint_suggestion_and_suggests_new_names_alone() -> None:
    study = lmtune.create_study(seed=0)
    study.optimize(conditional, n_trials=12)
    for record in study.trials:
        assert ("momentum" in record.params) == (record.params["optimizer"] == "sgd")
    trial = study.ask()
    trial.suggest_categorical("optimizer", ["sgd", "adam"])
    with pytest.raises(ConfigError, match="suggested from"):
        trial.suggest_int("optimizer", 0, 3)


def test_grid_sampler_covers_the_grid_once_and_resumes() -> None:
    space = {"a": [1, 2, 3], "b": {"type": "int", "low": 0, "high": 1}}
    storage = InMemoryStorage()
    study = lmtune.create_study(space=space, sampler=GridSampler(), storage=storage, study_name="g")
    study.optimize(lambda t: t.params["a"] + t.params["b"], n_trials=4)
    again = lmtune.load_study("g", storage, sampler=GridSampler())
    again.optimize(lambda t: t.params["a"] + t.params["b"], n_trials=100)
    seen = [json.dumps(t.params, sort_keys=True) for t in again.trials]
    assert len(seen) == 6 and len(set(seen)) == 6


def test_timeout_bounds_the_run() -> None:
    study = lmtune.create_study()
    start = time.monotonic()
    study.optimize(lambda t: time.sleep(0.05) or 1.0, timeout=0.3)
    assert time.monotonic() - start < 2.0
    assert 2 <= len(study.trials) <= 8


def test_total_trials_replaces_failures() -> None:
    outcomes = iter([1.0, RuntimeError("x"), 2.0, 3.0, 4.0])

    def objective(trial: lmtune.Trial) -> float:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    study = lmtune.create_study()
    study.optimize(objective, total_trials=3)
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 3
    assert len(study.trials) == 4


def test_stale_running_trials_fail_as_worker_lost() -> None:
    storage = InMemoryStorage()
    study = lmtune.create_study(storage=storage, study_name="s", grace_period=0.2)
    study.ask()
    study._heartbeat.stop()  # the worker vanishes: no more heartbeats
    time.sleep(0.3)
    reopened = lmtune.load_study("s", storage, grace_period=0.2)
    assert reopened.trials[0].state is TrialState.FAILED
    assert reopened.trials[0].failure_reason == "worker lost"


def test_checkpoint_dir_is_per_trial_and_recorded() -> None:
    study = lmtune.create_study()

    def objective(trial: lmtune.Trial) -> float:
        (trial.checkpoint_dir / "state.txt").write_text(str(trial.number))
        return 0.0

    study.optimize(objective, n_trials=2)
    dirs = [t.checkpoint_dir for t in study.trials]
    assert dirs[0] != dirs[1]
    assert (Path(dirs[1]) / "state.txt").read_text() == "1"


def test_reopening_checks_direction_and_space() -> None:
    storage = InMemoryStorage()
    lmtune.create_study(storage=storage, study_name="s", space=BRANIN_SPACE)
    with pytest.raises(DuplicatedStudyError):
        lmtune.create_study(storage=storage, study_name="s", space=BRANIN_SPACE)
    with pytest.raises(ConfigError, match="direction"):
        lmtune.create_study(storage=storage, study_name="s", direction="maximize", load_if_exists=True)
    with pytest.raises(ConfigError, match="another space"):
        lmtune.create_study(storage=storage, study_name="s", space={"x": [1, 2]}, load_if_exists=True)
    lmtune.create_study(storage=storage, study_name="s", space=BRANIN_SPACE, load_if_exists=True)


def test_bad_arguments_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'up'"):
        lmtune.create_study(direction="up")
    with pytest.raises(ConfigError, match="either"):
        lmtune.create_study(seed=1, sampler=RandomSampler(1))
    with pytest.raises(ConfigError, match="unknown scheme"):
        lmtune.create_study(storage="redis://x")
    with pytest.raises(ConfigError, match="n_trials"):
        lmtune.create_study().optimize(quadratic, n_trials=-1)


def test_exports_have_every_trial() -> None:
    study = lmtune.create_study(space=CONDITIONAL_SPACE, seed=0)

    def objective(trial: lmtune.Trial) -> float:
        trial.report(1.0, 0)
        return conditional(trial)

    study.optimize(objective, n_trials=6)
    data = json.loads(study.export_json())
    assert data["study"] == study.study_name and data["direction"] == "minimize"
    assert [t["state"] for t in data["trials"]] == ["COMPLETE"] * 6
    assert data["trials"][0]["intermediate"] == {"0": 1.0}
    lines = study.export_csv().strip().splitlines()
    assert len(lines) == 7
    assert lines[0].startswith("number,state,value,duration_s,params.")
    assert "params.momentum" in lines[0] and "params.beta2" in lines[0]


def test_enqueued_trials_run_even_when_they_cover_the_whole_grid() -> None:
    study = lmtune.create_study(space={"opt": ["sgd", "adam", "adagrad"]}, sampler=GridSampler())
    for choice in ("sgd", "adam", "adagrad"):
        study.enqueue({"opt": choice})
    study.optimize(lambda t: len(t.params["opt"]), n_trials=3)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert study.best_params == {"opt": "sgd"}
