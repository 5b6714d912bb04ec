"""The script the program objective's tests run, and a way to build an objective for it (imported by the tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lmtune
from lmtune.program import ProgramObjective, program_objective

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SCRIPTS = HERE / "scripts"
SPACE = {"x": {"type": "float", "low": 0.1, "high": 1.0}}
# The scripts import this checkout's lmtune, whatever is installed.
SCRIPT_ENV = {"PYTHONPATH": str(REPO_ROOT)}


def behave(*arguments: str, **options: Any) -> ProgramObjective:
    """An objective running scripts/behave.py with ``arguments``; the trial's x is appended as ``--x``."""
    options.setdefault("env", SCRIPT_ENV)
    return program_objective(["python", "behave.py", *arguments], "score", SPACE, cwd=SCRIPTS, **options)


def one_trial(objective: ProgramObjective, **study_options: Any) -> lmtune.TrialRecord:
    study = lmtune.create_study(direction="maximize", space=SPACE, seed=0, **study_options)
    study.optimize(objective, n_trials=1, max_failed_trials=None)
    (record,) = study.trials
    return record
