"""The `program:` section is checked before a study starts: `lmtune validate` catches the static mistakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from program_fixtures import REPO_ROOT

from lmtune.config import build_spec
from lmtune.exceptions import ConfigError
from lmtune.program import ProgramObjective

SPACE = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}


def study(tmp_path: Path, program: dict, **extra) -> dict:
    (tmp_path / "train.py").write_text("print('{}')\n")
    return {"study": "s", "direction": "maximize", "program": program, "space": SPACE, **extra}


def test_a_valid_section_becomes_a_picklable_objective(tmp_path: Path) -> None:
    import pickle

    data = study(tmp_path, {"command": "python train.py --lr {learning_rate}", "metric": "acc", "cwd": "."})
    spec = build_spec(data, tmp_path / "study.yaml")
    assert isinstance(spec.objective, ProgramObjective)
    assert spec.objective.command.arguments == ("python", "train.py", "--lr", "{learning_rate}")
    assert spec.objective.cwd == str(tmp_path.resolve())
    assert pickle.loads(pickle.dumps(spec.objective)) == spec.objective


@pytest.mark.parametrize(
    ("program", "extra", "message"),
    [
        (
            {"command": ["python", "train.py", "--lr", "{lr}"], "metric": "acc"},
            {},
            r"`program.command\[3\]` names \{lr\}, which is not a parameter of `space:`; the parameters are learning_rate",
        ),
        (
            {"command": ["python", "missing.py"], "metric": "acc"},
            {},
            r"`program.command\[1\]`: the script 'missing.py' does not exist in .*; give its path relative",
        ),
        (
            {"command": ["no-such-program-xyz", "--lr", "{learning_rate}"], "metric": "acc"},
            {},
            r"`program.command\[0\]`: cannot find 'no-such-program-xyz' on PATH",
        ),
        ({"command": ["python", "train.py"]}, {}, r"`program.metric` is required"),
        ({"command": ["python", "train.py"], "metric": " "}, {}, r"`program.metric`: .*must name the metric"),
        (
            {"command": ["python", "train.py"], "metric": "acc", "grace": 3},
            {},
            r"unknown key `program.grace`",
        ),
        (
            {"command": ["python", "train.py"], "metric": "acc", "cwd": "nowhere"},
            {},
            r"`program.cwd`: the folder",
        ),
        ({"command": "python 'train.py", "metric": "acc"}, {}, r"`program.command`: No closing quotation"),
        ({"command": ["python", "train.py"], "metric": "acc"}, {"space": None}, r"needs a `space:`"),
        (
            {"command": ["python", "train.py"], "metric": "acc"},
            {"objective": "x:y"},
            r"exactly one of `objective: module:function`, `task:` or `program:`",
        ),
    ],
)
def test_bad_input_is_an_error_naming_the_key(
    tmp_path: Path, program: dict, extra: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_spec(study(tmp_path, program, **extra), tmp_path / "study.yaml")


def test_lmtune_validate_reports_a_template_naming_an_unknown_parameter(tmp_path: Path) -> None:
    data = study(tmp_path, {"command": ["python", "train.py", "--lr", "{lr}"], "metric": "acc"})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(data))
    run = subprocess.run(
        [sys.executable, "-m", "lmtune.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert run.returncode == 2
    assert "{lr}, which is not a parameter of `space:`" in run.stderr
    assert str(path) in run.stderr


def test_the_example_study_file_validates() -> None:
    from lmtune.config import load_study_file

    spec = load_study_file(REPO_ROOT / "examples" / "sst2-bow" / "study.yaml")
    assert spec.objective.metric == "eval_accuracy" and spec.execution.workers == 2
    assert spec.objective.command.fields[3] == ("learning_rate",)
