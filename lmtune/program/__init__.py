"""Script objectives: a study runs the user's own training script once per trial (the ``program:`` section).

The script gets the trial's parameters on its command line, reports with :func:`lmtune.report` or JSON lines on
stdout, and is stopped with SIGTERM when the scheduler prunes it. See ``docs/programs.md``. Names load on first
use, so ``import lmtune`` (which gives scripts ``lmtune.report``) stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ProgramFailed",
    "ProgramFile",
    "ProgramObjective",
    "program_from_config",
    "program_objective",
    "report",
]

_HOMES = {
    "ProgramFailed": "lmtune.program.process",
    "ProgramFile": "lmtune.program.spec",
    "ProgramObjective": "lmtune.program.objective",
    "program_from_config": "lmtune.program.spec",
    "program_objective": "lmtune.program.spec",
    "report": "lmtune.program.reporting",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lmtune.program' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
