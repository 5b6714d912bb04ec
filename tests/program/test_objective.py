"""The program objective runs a real script per trial: reports, pruning by signal, logs and failure reasons."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from program_fixtures import REPO_ROOT, SCRIPT_ENV, SCRIPTS, SPACE, behave, one_trial

import lmtune
from lmtune.program import program_objective
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler
from lmtune.trial import TrialState

EXAMPLE = REPO_ROOT / "examples" / "sst2-bow"


class StopAtStep(Scheduler):
    """Stops every trial once it reports ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_report(self, trial, history) -> Decision:
        return Decision(Action.STOP, "test") if trial.last_step >= self.step else CONTINUE


def logs_of(record: lmtune.TrialRecord) -> Path:
    return Path(record.user_attrs["program_logs"])


@pytest.mark.usefixtures("shared_dir")
def test_the_example_training_script_is_tuned_through_its_command_line() -> None:
    """The real SST-2 script: each epoch's JSON line becomes a report and the last one the trial's value."""
    objective = program_objective(
        ["python", "train.py", "--learning_rate", "{learning_rate}", "--epochs", "2"],
        "eval_accuracy",
        {"learning_rate": {"type": "float", "low": 0.05, "high": 0.5, "log": True}, "hidden": [0, 16]},
        cwd=EXAMPLE,
        env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert objective.command.is_template
    study = lmtune.create_study(direction="maximize", space={
        "learning_rate": {"type": "float", "low": 0.05, "high": 0.5, "log": True}, "hidden": [0, 16]
    }, seed=3)  # fmt: skip
    study.enqueue({"learning_rate": 0.3, "hidden": 16})
    study.optimize(objective, n_trials=1)
    (record,) = study.trials
    assert record.state is TrialState.COMPLETE, record.failure_reason
    printed = [json.loads(line) for line in (logs_of(record) / "stdout.log").read_text().splitlines()]
    assert [line["step"] for line in printed] == [1, 2]
    assert record.intermediate == {1: printed[0]["eval_accuracy"], 2: printed[1]["eval_accuracy"]}
    assert record.value == printed[1]["eval_accuracy"] > 0.6  # better than chance on the dev set


@pytest.mark.parametrize("mode", ["json", "report"])
def test_json_lines_and_lmtune_report_both_reach_the_trial(mode: str) -> None:
    record = one_trial(behave("--mode", mode, "--steps", "3"))
    assert record.state is TrialState.COMPLETE, record.failure_reason
    x = record.params["x"]
    assert record.intermediate == pytest.approx({1: x, 2: 2 * x, 3: 3 * x})
    assert record.value == pytest.approx(3 * x)


def test_reports_without_a_step_are_numbered_from_one() -> None:
    record = one_trial(behave("--mode", "auto_steps", "--steps", "2"))
    assert sorted(record.intermediate) == [1, 2]


def test_pruning_sends_sigterm_and_the_trial_ends_pruned(tmp_path: Path) -> None:
    marker = tmp_path / "term"
    objective = behave("--mode", "json", "--steps", "100", "--pause", "0.1", "--marker", str(marker))
    began = time.monotonic()
    record = one_trial(objective, scheduler=StopAtStep(2))
    assert record.state is TrialState.PRUNED
    assert marker.read_text() == "SIGTERM"
    assert max(record.intermediate) < 10 and time.monotonic() - began < 8  # not the 10 s of 100 steps
    assert record.value == record.intermediate[max(record.intermediate)]


def test_a_script_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    marker = tmp_path / "term"
    objective = behave("--mode", "ignore_term", "--steps", "3", "--marker", str(marker), grace_period=0.5)
    began = time.monotonic()
    record = one_trial(objective, scheduler=StopAtStep(1))
    assert record.state is TrialState.PRUNED and marker.read_text() == "SIGTERM"
    assert time.monotonic() - began < 30  # the script would sleep 600 s


def test_stdout_and_stderr_are_kept_per_trial_and_a_crash_fails_with_stderrs_last_lines() -> None:
    record = one_trial(behave("--mode", "crash"))
    assert record.state is TrialState.FAILED
    reason = record.failure_reason
    assert reason.startswith("ProgramFailed: behave.py exited with code 1; the last lines of its stderr:")
    assert "RuntimeError: diverged at x=" in reason and "about to fail" in reason
    logs = logs_of(record)
    assert "starting" in (logs / "stdout.log").read_text()
    assert "Traceback" in (logs / "stderr.log").read_text()
    assert logs.name == f"trial_{record.number:05d}"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (
            "garbage",
            r"never reported 'score'; this line looked like JSON but is not: '\{not json'; print a JSON",
        ),
        ("silent", r"none of its 1 lines of stdout is a JSON report \(the last: 'starting \{"),
        (
            "wrong_metric",
            r"printed JSON lines with the keys accuracy, step but never 'score'; set program.metric",
        ),
        ("not_a_number", r"behave.py \(stdout line 2\) reported score='n/a', which is not a finite number"),
    ],
)
def test_a_script_that_never_reports_its_metric_fails_with_what_it_printed(mode: str, reason: str) -> None:
    record = one_trial(behave("--mode", mode))
    assert record.state is TrialState.FAILED
    assert record.failure_reason.startswith("ProgramFailed: ")
    assert re.search(reason, record.failure_reason), record.failure_reason


def test_a_script_that_stays_silent_past_report_timeout_is_stopped() -> None:
    began = time.monotonic()
    record = one_trial(behave("--mode", "hang", report_timeout=1.0, grace_period=0.5))
    assert record.state is TrialState.FAILED
    assert "reported no 'score' for 1 s (program.report_timeout) and was stopped" in record.failure_reason
    assert time.monotonic() - began < 30


def test_lmtune_report_outside_a_study_checks_its_arguments_and_does_nothing(monkeypatch) -> None:
    monkeypatch.delenv("LMTUNE_REPORT_FILE", raising=False)
    lmtune.report(0.5, 1)
    with pytest.raises(lmtune.ConfigError, match=r"lmtune.report\(\) needs a finite number, but got nan"):
        lmtune.report(float("nan"), 1)
    with pytest.raises(lmtune.ConfigError, match="step must be a non-negative integer"):
        lmtune.report(0.5, -1)


def test_the_script_sees_its_trial_in_the_environment() -> None:
    code = (
        "import json, os; params = json.loads(os.environ['LMTUNE_PARAMS']); "
        "print(json.dumps(dict(score=params['x'], step=10 + int(os.environ['LMTUNE_TRIAL_NUMBER']))))"
    )
    # With no field in the command, the parameters are appended as --x VALUE, which `python -c` leaves alone.
    record = one_trial(program_objective(["python", "-c", code], "score", SPACE, cwd=SCRIPTS, env=SCRIPT_ENV))
    assert record.state is TrialState.COMPLETE, record.failure_reason
    assert record.intermediate == {10: pytest.approx(record.params["x"])}


def test_reserved_fields_give_the_trials_number_and_its_own_checkpoint_folder() -> None:
    code = (
        "import json, pathlib, sys; folder = pathlib.Path(sys.argv[1]); "
        "print(json.dumps(dict(score=float(folder.is_dir()), step=int(sys.argv[2]) + 1, name=folder.name)))"
    )
    objective = program_objective(
        ["python", "-c", code, "{checkpoint_dir}", "{trial_number}"], "score", SPACE, cwd=SCRIPTS
    )
    record = one_trial(objective)
    assert record.state is TrialState.COMPLETE, record.failure_reason
    assert record.intermediate == {1: 1.0}  # trial 0's folder existed when the script ran
    assert "trial_00000" in (logs_of(record) / "stdout.log").read_text()
