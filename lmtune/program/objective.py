"""The program objective: one run of the user's script per trial, its reports passed to the trial.

It is an ordinary objective (a picklable value called with a trial), so it runs in the calling process, in the
local pool (``workers:``, GPU slots: the script inherits the trial process's ``CUDA_VISIBLE_DEVICES``) and on Ray
alike. The trial's value is the last value the script reported. When the scheduler stops the trial after a report,
the script is stopped and the trial ends PRUNED (or PAUSED) with that report. A script that exits non-zero, is
killed, reports nothing, or reports nothing for ``report_timeout`` seconds fails the trial with the reason.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtune.executors.local import describe_exit
from lmtune.program.command import CommandTemplate
from lmtune.program.output import Report, ReportParser
from lmtune.program.process import ProgramFailed, ScriptProcess
from lmtune.program.reporting import PARAMS_ENV, REPORT_FILE_ENV, TRIAL_NUMBER_ENV
from lmtune.trial import Trial

__all__ = ["ProgramObjective"]

POLL_INTERVAL = 0.1  # seconds between looks at the script's output
PYTHON_NAMES = ("python", "python3")  # run with the interpreter lmtune runs in, which has lmtune.report


@dataclass(frozen=True)
class ProgramObjective:
    """Run ``command`` per trial in ``cwd`` with ``env`` added to the environment; the value is ``metric``.

    ``grace_period``: seconds between SIGTERM and SIGKILL when a trial is stopped. ``report_timeout``: seconds
    without a report after which the script is stopped and the trial failed (None: no limit). ``logs``: the
    folder under which each trial's ``stdout.log``, ``stderr.log`` and ``reports.jsonl`` are kept (None: a
    ``logs`` folder under the study's checkpoint folder).
    """

    command: CommandTemplate
    metric: str
    cwd: str
    env: Mapping[str, str] = field(default_factory=dict)
    grace_period: float = 10.0
    report_timeout: float | None = None
    logs: str | None = None

    @property
    def program(self) -> str:
        """The script's name in messages: the first argument that is not an option, after an interpreter."""
        arguments = self.command.arguments
        if (
            Path(arguments[0]).name in PYTHON_NAMES
            and len(arguments) > 1
            and not arguments[1].startswith("-")
        ):
            return Path(arguments[1]).name
        return Path(arguments[0]).name

    def arguments(self, trial: Trial) -> list[str]:
        """The command line of ``trial``."""

        def reserved(name: str) -> Any:
            return trial.number if name == "trial_number" else str(trial.checkpoint_dir)

        argv = self.command.render(trial.params, reserved)
        if argv[0] in PYTHON_NAMES:
            argv[0] = sys.executable
        return argv

    def logs_dir(self, trial: Trial) -> Path:
        root = Path(self.logs) / trial.study.study_name if self.logs else trial.study.checkpoint_root / "logs"
        return root / f"trial_{trial.number:05d}"

    def __call__(self, trial: Trial) -> float:
        logs = self.logs_dir(trial)
        trial.set_user_attr("program_logs", str(logs))
        environment = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",  # a Python script's prints reach the trial as they happen, not at exit
            **self.env,
            REPORT_FILE_ENV: str(logs / "reports.jsonl"),
            TRIAL_NUMBER_ENV: str(trial.number),
            PARAMS_ENV: json.dumps(trial.params),
        }
        parser = ReportParser(self.metric, self.program)
        with ScriptProcess(self.arguments(trial), self.cwd, environment, logs, self.grace_period) as process:
            code = self._follow(trial, process, parser)
            if code is None:  # the scheduler stopped the trial
                assert parser.last is not None
                return parser.last.value
            if code != 0:
                tail = process.stderr_tail()
                where = f"; the last lines of its stderr:\n{tail}" if tail else " (its stderr is empty)"
                raise ProgramFailed(f"{self.program} {describe_exit(code)}{where}")
        if parser.last is None:
            raise ProgramFailed(parser.never_reported())
        return parser.last.value

    def _follow(self, trial: Trial, process: ScriptProcess, parser: ReportParser) -> int | None:
        """Pass the script's reports to the trial until it ends (its exit code) or the trial should stop (None)."""
        last_report = time.monotonic()
        while True:
            code = process.wait(POLL_INTERVAL)
            reports: list[Report] = parser.from_stdout(process.stdout_lines())
            reports += parser.from_report_file(process.report_lines())
            for report in reports:
                trial.report(report.value, report.step)
                if trial.should_stop():
                    process.stop()
                    return None
            if code is not None:
                return code
            now = time.monotonic()
            if reports:
                last_report = now
            elif self.report_timeout is not None and now - last_report > self.report_timeout:
                raise ProgramFailed(
                    f"{self.program} reported no {self.metric!r} for {self.report_timeout:g} s "
                    f"(program.report_timeout) and was stopped"
                )
