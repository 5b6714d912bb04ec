"""The script side of a program objective: ``lmtune.report(value, step)`` and the report lines it writes.

A program objective starts the user's script with ``LMTUNE_REPORT_FILE`` naming a file of its trial; each
:func:`report` appends one JSON line ``{"value": ..., "step": ...}`` to it, which the objective reads and passes to
the trial (so the scheduler decides at every report). Appending to a file, not writing to an inherited pipe, lets a
process the script starts itself (a ``torchrun`` worker) report too. Outside lmtune the variable is absent and
:func:`report` checks its arguments and does nothing, so the script runs unchanged on its own.
"""

from __future__ import annotations

import json
import os

from lmtune.exceptions import ConfigError
from lmtune.trial import check_value

__all__ = ["PARAMS_ENV", "REPORT_FILE_ENV", "TRIAL_NUMBER_ENV", "report"]

REPORT_FILE_ENV = "LMTUNE_REPORT_FILE"  # the trial's report file, set for the script by its program objective
TRIAL_NUMBER_ENV = "LMTUNE_TRIAL_NUMBER"
PARAMS_ENV = "LMTUNE_PARAMS"  # the trial's parameters as a JSON object


def check_step(step: object, where: str) -> int | None:
    """A report's step: None (the objective numbers it) or a non-negative integer (an integral float is taken)."""
    if step is None:
        return None
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ConfigError(f"{where}: step must be a non-negative integer (epochs, steps), but got {step!r}")
    return step


def report(value: float, step: int | None = None) -> None:
    """Report an intermediate ``value`` of the metric at ``step`` (epochs or steps; None: one more than the last
    report, starting at 1) from a script that a study runs as its ``program:``. Pruning ends the script with
    SIGTERM. Outside a study this checks its arguments and does nothing."""
    checked, _ = check_value(value)
    if checked is None:
        raise ConfigError(f"lmtune.report() needs a finite number, but got {value!r}")
    step = check_step(step, "lmtune.report()")
    path = os.environ.get(REPORT_FILE_ENV)
    if not path:
        return
    line = json.dumps({"value": checked, "step": step}) + "\n"
    # One write of a short line with O_APPEND: lines of several reporting processes never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
