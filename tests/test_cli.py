from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import lmtune
from lmtune.cli import main
from lmtune.storage import get_storage
from lmtune.trial import TrialState

BRANIN = """\
study: branin
objective: lmtune.testing.functions:branin
space:
  x: {type: float, low: -5, high: 10}
  y: {type: float, low: 0, high: 15}
sampler: {name: sobol, seed: 0}
n_trials: 12
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(BRANIN)
    return path


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lmtune.db'}"


def test_run_resume_and_extend(study_file: Path, tmp_path: Path) -> None:
    url = db_url(tmp_path)
    code, out, _ = invoke("run", str(study_file), "--storage", url)
    assert code == 0, out
    assert "best trial" in out and "x: " in out
    study = lmtune.load_study("branin", url)
    assert len(study.trials) == 12
    first = [t.params for t in study.trials]
    assert invoke("run", str(study_file), "--storage", url)[0] == 0
    assert len(lmtune.load_study("branin", url).trials) == 12
    assert invoke("run", str(study_file), "--storage", url, "--n-trials", "15")[0] == 0
    again = lmtune.load_study("branin", url).trials
    assert len(again) == 15 and [t.params for t in again[:12]] == first
    assert study.attrs["provenance"]["study_file_text"] == BRANIN


def test_storage_in_the_file_is_relative_to_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "s.yaml").write_text(
        BRANIN + "storage: sqlite:///here.db\nn_trials: 3\n".replace("n_trials: 3\n", "")
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert invoke("run", str(folder / "s.yaml"))[0] == 0
    finally:
        os.chdir(cwd)
    assert (folder / "here.db").is_file()
    assert not (tmp_path / "here.db").exists()


def test_best_json_status_export_and_delete(study_file: Path, tmp_path: Path) -> None:
    url = db_url(tmp_path)
    invoke("run", str(study_file), "--storage", url)
    code, out, _ = invoke("best", "branin", "--storage", url, "--json")
    assert code == 0
    best = json.loads(out)
    assert set(best) == {"number", "value", "params"}
    assert best["value"] == min(t.value for t in lmtune.load_study("branin", url).trials)

    code, out, _ = invoke("status", "--storage", url)
    assert code == 0 and "branin [minimize]: 12 trials (complete 12)" in out

    code, out, _ = invoke("export", "branin", "--storage", url, "--format", "json")
    data = json.loads(out)
    assert data["study"] == "branin" and data["direction"] == "minimize"
    assert len(data["trials"]) == 12 and data["trials"][0]["state"] == "COMPLETE"
    assert {"number", "state", "value", "params", "intermediate"} <= set(data["trials"][0])

    csv_path = tmp_path / "t.csv"
    assert invoke("export", "branin", "--storage", url, "--format", "csv", "-o", str(csv_path))[0] == 0
    assert len(csv_path.read_text().strip().splitlines()) == 13

    code, out, _ = invoke("studies", "list", "--storage", url)
    assert out.startswith("branin\tminimize\t12 trials")
    assert invoke("studies", "delete", "branin", "--storage", url, "--yes")[0] == 0
    code, _, err = invoke("best", "branin", "--storage", url)
    assert code == 2 and "no study named 'branin'" in err


BAD_FILES = {
    "empty": ("", "empty"),
    "not yaml": ("study: [unclosed\n", "not valid YAML"),
    "a list": ("- a\n- b\n", "mapping"),
    "unknown key": (BRANIN + "n_trails: 3\n", "n_trails: unknown key"),
    "wrong type": (
        BRANIN.replace("n_trials: 12", "n_trials: many"),
        "n_trials: must be a valid integer, but got 'many'",
    ),
    "missing study": (BRANIN.replace("study: branin\n", ""), "study: required but missing"),
    "blank study": (BRANIN.replace("study: branin", "study: '  '"), "study: must not be blank"),
    "bad space": (BRANIN.replace("low: 0, high: 15", "low: 15, high: 0"), "space.y"),
    "bad objective": (
        BRANIN.replace("lmtune.testing.functions:branin", "no_such_module:f"),
        "no_such_module",
    ),
    "missing function": (BRANIN.replace("functions:branin", "functions:nope"), "no function 'nope'"),
    "unknown sampler": (BRANIN.replace("name: sobol", "name: annealing"), "sampler.name"),
    "unknown storage": (BRANIN + "storage: redis://localhost\n", "unknown scheme 'redis'"),
    "missing folder": (BRANIN + "storage: sqlite:///no/such/dir/x.db\n", "does not exist"),
    "folder as db": (BRANIN + "storage: sqlite:///.\n", "folder"),
    "bad checkpoints": (BRANIN + "checkpoints: {keep_best: 0}\n", "checkpoints.keep_best"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_study_files_exit_2_with_one_clear_message(case: str, tmp_path: Path) -> None:
    text, expected = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    for command in ("validate", "run"):
        code, out, err = (
            invoke(command, str(path), "--storage", db_url(tmp_path))
            if command == "run" and "storage:" not in text
            else invoke(command, str(path))
        )
        assert code == 2, (command, out, err)
        assert err.startswith(f"lmtune: error: {path}"), err
        assert expected in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_a_changed_file_does_not_touch_the_stored_study(study_file: Path, tmp_path: Path) -> None:
    url = db_url(tmp_path)
    invoke("run", str(study_file), "--storage", url)
    before = lmtune.load_study("branin", url).export_json()
    study_file.write_text(BRANIN.replace("high: 15", "high: 20"))
    code, _, err = invoke("run", str(study_file), "--storage", url)
    assert code == 2 and "another space" in err
    study_file.write_text(BRANIN + "direction: maximize\n")
    code, _, err = invoke("run", str(study_file), "--storage", url)
    assert code == 2 and "direction" in err
    assert lmtune.load_study("branin", url).export_json() == before


def test_string_numbers_enqueue_and_timeout(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "study: lr\nobjective: lmtune.testing.functions:mixed\n"
        "space:\n  lr: {type: float, low: 1e-5, high: 1e-1, log: true}\n"
        "  layers: {type: int, low: 1, high: 8}\n  dropout: {type: float, low: 0, high: 0.5, step: 0.05}\n"
        "  activation: [relu, gelu, tanh]\n"
        "enqueue:\n  - {lr: 1e-3, layers: 4, dropout: 0.1, activation: gelu}\n"
        "n_trials: 5\ntimeout: 60\nsampler: {name: random, seed: 1}\n"
    )
    url = db_url(tmp_path)
    assert invoke("run", str(path), "--storage", url)[0] == 0
    assert invoke("run", str(path), "--storage", url, "--n-trials", "6")[0] == 0
    trials = lmtune.load_study("lr", url).trials
    assert trials[0].params == {"lr": 1e-3, "layers": 4, "dropout": 0.1, "activation": "gelu"}
    assert trials[0].value == 0.0
    assert sum(t.params == trials[0].params for t in trials) == 1


def _deliver_sigint() -> None:
    """Start a child with SIGINT handled and unblocked, as a terminal's Ctrl-C finds a fresh command: a child
    inherits an ignored or blocked SIGINT from this process, where runtimes started by other tests live."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_marks_the_trial_interrupted_and_a_rerun_resumes_it_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    (tmp_path / "slow.py").write_text(
        "import time\n\ndef objective(trial):\n    x = trial.suggest_float('x', 0, 1)\n"
        "    if trial.number == 2:\n        (trial.checkpoint_dir / 'state.txt').write_text('step 7')\n"
        "    time.sleep(0.4 if trial.number < 2 else 30)\n    return x\n"
    )
    (tmp_path / "s.yaml").write_text("study: slow\nobjective: slow:objective\nn_trials: 3\n")
    url = db_url(tmp_path)
    command = [sys.executable, "-m", "lmtune.cli", "run", str(tmp_path / "s.yaml"), "--storage", url]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_deliver_sigint,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            if len(lmtune.load_study("slow", url).trials) >= 3:
                break
        except lmtune.LmtuneError:
            continue
    time.sleep(0.3)  # trial 2 writes its checkpoint
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "run the same command again" in err and "Traceback" not in err
    trials = lmtune.load_study("slow", url).trials
    states = [t.state for t in trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAILED, TrialState.WAITING]
    assert trials[2].failure_reason == "interrupted"
    assert trials[3].system_attrs["retry_of"] == 2 and trials[3].params == trials[2].params
    assert (Path(trials[2].checkpoint_dir) / "state.txt").read_text() == "step 7"  # the budget kept it

    (tmp_path / "slow.py").write_text(
        "from pathlib import Path\n\ndef objective(trial):\n    x = trial.suggest_float('x', 0, 1)\n"
        "    if trial.resume_from:\n"
        "        trial.set_user_attr('resumed', (Path(trial.resume_from) / 'state.txt').read_text())\n"
        "    return x\n"
    )
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    trials = lmtune.load_study("slow", url).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3 and len(trials) == 4
    assert trials[3].user_attrs["resumed"] == "step 7" and trials[3].params == trials[2].params


def test_a_file_beside_the_study_file_never_shadows_an_installed_package(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    marker = tmp_path / "shadow-ran"
    (folder / "sqlalchemy.py").write_text(f"open({str(marker)!r}, 'w').close()\nraise SystemExit(9)\n")
    (folder / "mine.py").write_text("def objective(trial):\n    return trial.suggest_float('x', 0, 1)\n")
    (folder / "s.yaml").write_text(
        BRANIN.replace("study: branin", "study: shadow") + f"storage: sqlite:///{tmp_path / 'db.sqlite'}\n"
    )
    (folder / "own.yaml").write_text(
        f"study: own\nobjective: mine:objective\nn_trials: 1\nstorage: sqlite:///{tmp_path / 'db.sqlite'}\n"
    )
    for name in ("s.yaml", "own.yaml"):  # from another folder, as a user runs it
        result = subprocess.run(
            [sys.executable, "-m", "lmtune.cli", "run", str(folder / name)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
    assert not marker.exists()


def test_inspection_honours_read_only_urls_and_writes_nothing(study_file: Path, tmp_path: Path) -> None:
    url = db_url(tmp_path)
    assert invoke("run", str(study_file), "--storage", url)[0] == 0
    stored = [tmp_path / "lmtune.db", tmp_path / "lmtune.db-wal"]
    before = [p.read_bytes() if p.exists() else None for p in stored]
    code, out, err = invoke("status", "--storage", url + "?mode=ro")
    assert code == 0 and "branin [minimize]: 12 trials" in out, err
    assert invoke("best", "branin", "--storage", url, "--json")[0] == 0
    assert [p.read_bytes() if p.exists() else None for p in stored] == before
    with pytest.raises(lmtune.LmtuneError, match="opened read-only"):
        get_storage(url + "?mode=ro").delete_study("branin")
