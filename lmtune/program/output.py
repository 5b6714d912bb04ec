"""Reports out of a script's output: JSON lines on stdout and the lines :func:`lmtune.report` writes.

A stdout line that is a JSON object holding the metric (``{"step": 3, "eval_accuracy": 0.91}``) is a report; other
lines are the script's own output and are skipped. A report without a step gets one more than the last one
(the first is 1). What was seen is remembered so that a script that never reported its metric gets a reason that
says what it printed instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from lmtune.exceptions import ConfigError
from lmtune.program.process import ProgramFailed
from lmtune.program.reporting import check_step
from lmtune.trial import check_value

__all__ = ["Report", "ReportParser"]


@dataclass(frozen=True)
class Report:
    value: float
    step: int


class ReportParser:
    """Turns output lines into :class:`Report` s for one trial's script, named ``program`` in messages."""

    def __init__(self, metric: str, program: str) -> None:
        self.metric = metric
        self.program = program
        self.last: Report | None = None
        self.stdout_lines = 0
        self.last_stdout: str | None = None
        self.keys_seen: set[str] = set()
        self.unparsed: str | None = None  # the first line that looked like JSON but was not

    def _next(self, value: object, step: object, where: str) -> Report:
        checked, _ = check_value(value)
        if checked is None:
            raise ProgramFailed(
                f"{self.program} {where} reported {self.metric}={value!r}, which is not a finite number"
            )
        try:
            number = check_step(step, f"{self.program} {where}")
        except ConfigError as exc:
            raise ProgramFailed(str(exc)) from None
        if number is None:
            number = 1 if self.last is None else self.last.step + 1
        self.last = Report(checked, number)
        return self.last

    def from_stdout(self, lines: Iterable[str]) -> list[Report]:
        reports = []
        for line in lines:
            self.stdout_lines += 1
            text = line.strip()
            if text:
                self.last_stdout = text
            if not text.startswith("{"):
                continue
            try:
                data = json.loads(text)
            except ValueError:
                self.unparsed = self.unparsed or text
                continue
            if not isinstance(data, dict):
                continue
            self.keys_seen.update(data)
            if self.metric in data:
                where = f"(stdout line {self.stdout_lines})"
                reports.append(self._next(data[self.metric], data.get("step"), where))
        return reports

    def from_report_file(self, lines: Iterable[str]) -> list[Report]:
        reports = []
        for line in lines:
            data = json.loads(line)
            reports.append(self._next(data["value"], data["step"], "(lmtune.report)"))
        return reports

    def never_reported(self) -> str:
        """Why no value came out of a script that ended without reporting its metric."""
        fix = f'print a JSON line such as {{"step": 1, "{self.metric}": 0.9}} or call lmtune.report(value, step)'
        if self.keys_seen:
            keys = ", ".join(sorted(self.keys_seen))
            return (
                f"{self.program} printed JSON lines with the keys {keys} but never {self.metric!r}; set "
                f"program.metric to one of them, or {fix}"
            )
        if self.unparsed is not None:
            return f"{self.program} never reported {self.metric!r}; this line looked like JSON but is not: {self.unparsed[:200]!r}; {fix}"
        if self.last_stdout is not None:
            return (
                f"{self.program} never reported {self.metric!r}: none of its {self.stdout_lines} lines of stdout is "
                f"a JSON report (the last: {self.last_stdout[:200]!r}); {fix}"
            )
        return f"{self.program} printed nothing and never reported {self.metric!r}; {fix}"
