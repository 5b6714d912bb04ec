"""Terminal progress: the lines it draws, its ETAs, plain output off a terminal, the live display in tmux, and the
switches for other libraries' progress bars and log formats."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lmtune
from lmtune.progress import (
    PROGRESS_ATTR,
    StudyProgress,
    quiet_third_party_bars,
    study_line,
    trial_line,
    trial_progress,
)
from lmtune.space import FloatDistribution, SearchSpace
from lmtune.trial import TrialState

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
ESCAPE = re.compile(r"\x1b\[")

STUDY_FILE = """study: progress-demo
objective: training_objective:training
direction: maximize
space:
  learning_rate: {type: float, low: 1.0e-5, high: 1.0e-1, log: true}
sampler: {name: random, seed: 0}
scheduler: {name: asha, min_resource: 10, max_resource: 30, reduction_factor: 3}
n_trials: 4
"""


def _study_folder(tmp_path: Path) -> Path:
    shutil.copy(HERE / "training_objective.py", tmp_path / "training_objective.py")
    (tmp_path / "study.yaml").write_text(STUDY_FILE)
    return tmp_path


def _env(step_seconds: float) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LMTUNE_TEST_STEP_SECONDS": str(step_seconds),
        "COLUMNS": "160",
    }


def _running_study() -> lmtune.Study:
    """An in-memory study with one finished and one running trial that wrote its progress."""
    space = SearchSpace({"lr": FloatDistribution(1e-5, 1e-1, log=True)})
    study = lmtune.create_study(direction="maximize", space=space, seed=0)
    done = study.ask()
    done.report(0.7, 10)
    study.tell(done, 0.81)
    running = study.ask()
    running.report(0.74, 10)
    now = time.time()
    running.set_user_attr(
        PROGRESS_ATTR, {"steps": 12, "time": now, "step": 12, "total_steps": 30, "steps_per_epoch": 10}
    )
    return study


def test_trial_line_shows_step_epoch_last_metric_and_eta_from_step_times() -> None:
    study = _running_study()
    record = study.trials[1]
    info = record.user_attrs[PROGRESS_ATTR]
    # First seen at step 2, ten seconds earlier: 1 s per step, 18 steps to go.
    p = trial_progress(record, first_seen=(2, info["time"] - 10.0))
    assert p.seconds_per_step == pytest.approx(1.0)
    assert (
        trial_line(p, "accuracy") == "trial 1: step 12/30, epoch 2/3, accuracy 0.74 at step 10, ETA 0:00:18"
    )


def test_study_line_counts_states_and_estimates_before_any_trial_finished() -> None:
    space = SearchSpace({"lr": FloatDistribution(1e-5, 1e-1, log=True)})
    study = lmtune.create_study(direction="maximize", space=space, seed=0)
    running = study.ask()
    started = study.trials[0].started_at
    running.set_user_attr(
        PROGRESS_ATTR,
        {"steps": 10, "time": started + 20.0, "step": 10, "total_steps": 30, "steps_per_epoch": 10},
    )
    progress = StudyProgress(study, total=3, metric="accuracy", live=False)
    status, trials = progress.snapshot(now=started + 20.0)
    # 2 s per step: 40 s left for the running trial, then 2 more trials of 60 s each, one at a time.
    assert trials[0].eta == pytest.approx(40.0)
    assert status.eta == pytest.approx(160.0)
    line = study_line(status, "accuracy")
    assert line == "study-" + line.split("study-", 1)[1]  # named after the study
    assert "0/3 finished (0 pruned), 0 failed, 1 running | best - | ETA 0:02:40" in line


def test_study_line_has_best_value_and_pruned_and_failed_counts() -> None:
    study = _running_study()
    pruned = study.ask()
    pruned.report(0.2, 10)
    study.tell(pruned, state=TrialState.PRUNED)
    failed = study.ask()
    study.tell(failed, state=TrialState.FAILED)
    status, _ = StudyProgress(study, total=10, metric="accuracy", live=False).snapshot()
    line = study_line(status, "accuracy")
    assert "2/10 finished (1 pruned), 1 failed, 1 running" in line
    assert "best accuracy 0.81 (trial 0)" in line


def test_a_time_budget_caps_the_eta() -> None:
    study = _running_study()
    progress = StudyProgress(study, total=None, timeout=60.0, live=False)  # only the clock bounds it
    with progress:
        status, _ = progress.snapshot()
    assert status.eta is not None and 55.0 <= status.eta <= 60.0


def test_third_party_bars_are_off_while_lmtune_shows_progress() -> None:
    import transformers.utils.logging as hf_logging

    assert hf_logging.is_progress_bar_enabled()
    with quiet_third_party_bars():
        assert not hf_logging.is_progress_bar_enabled()
        assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # inherited by trial processes
    assert hf_logging.is_progress_bar_enabled()
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ


def test_one_log_format_replaces_handlers_installed_before() -> None:
    code = (
        "import logging; logging.basicConfig();"  # a library's default handler: 'INFO:name:message'
        "from lmtune.progress import configure_logging; configure_logging();"
        "logging.getLogger('lmtune.nlp').info('trial 0 step 6')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(0), check=True
    )
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("INFO lmtune.nlp: trial 0 step 6"), out.stderr
    assert "INFO:" not in lines[0]


def test_plain_lines_without_control_codes_off_a_terminal(tmp_path: Path, artifacts: Path) -> None:
    folder = _study_folder(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "lmtune.cli", "run", "study.yaml", "--storage", "sqlite:///p.db"],
        cwd=folder,
        capture_output=True,
        text=True,
        env=_env(0.01),
        timeout=120,
        check=True,
    )
    text = out.stdout + out.stderr
    (artifacts / "progress-plain.txt").write_text(text)
    assert not ESCAPE.search(text)
    assert re.search(r"trial 0 COMPLETE value [\d.]+ at step 30 \| progress-demo: 1/4 finished", text)
    assert "4/4 finished" in text and "best value" in text


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (Debian: apt-get install tmux)")
def test_live_display_in_a_terminal(tmp_path: Path, artifacts: Path) -> None:
    folder = _study_folder(tmp_path)
    session = f"lmtune-progress-{os.getpid()}"
    command = f"{sys.executable} -m lmtune.cli run study.yaml --storage sqlite:///live.db; sleep 30"
    env = _env(0.3)
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "30", "-c", str(folder), command],
        env=env,
        check=True,
    )
    try:
        screen = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(1.0)
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
            ).stdout
            if re.search(
                r"trial \d+: step \d+/30, epoch \d/3, value [\d.]+ at step \d+, ETA 0:00:\d\d", screen
            ):
                break
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    (artifacts / "progress-live.txt").write_text(screen)
    assert re.search(
        r"trial \d+: step \d+/30, epoch \d/3, value [\d.]+ at step \d+, ETA 0:00:\d\d", screen
    ), screen
    assert re.search(r"progress-demo: \d/4 finished \(\d pruned\), \d failed, 1 running", screen), screen


def test_plain_lines_when_only_stdout_is_redirected(tmp_path: Path) -> None:
    import pty

    folder = _study_folder(tmp_path)
    master, slave = pty.openpty()  # stderr on a terminal, stdout to a pipe (as with `| tee run.log`)
    process = subprocess.Popen(
        [sys.executable, "-m", "lmtune.cli", "run", "study.yaml", "--storage", "sqlite:///t.db"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=_env(0.01),
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(master)
    terminal = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0
    assert "progress-demo: 4/4 finished" in terminal and not ESCAPE.search(terminal)
