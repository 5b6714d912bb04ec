"""One run of a user's script: started in its own process group, its output kept in files, stopped on request.

stdout is read line by line (it may carry JSON reports) and copied to ``stdout.log``; stderr goes to
``stderr.log``; ``reports.jsonl`` receives what the script's :func:`lmtune.report` calls write. The script runs in
a process group of its own, so stopping it (SIGTERM, then SIGKILL after a grace period) ends whatever it started,
and on Linux it is killed when the process that started it dies, so a killed trial process leaves no training
behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from lmtune.exceptions import LmtuneError

__all__ = ["ProgramFailed", "ScriptProcess"]

_PR_SET_PDEATHSIG = 1
_READER_JOIN = 5.0  # seconds to wait for the rest of stdout after the script ended


class ProgramFailed(LmtuneError):
    """A trial's script could not be started, failed, or never reported its metric; the message says why."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


class ScriptProcess:
    """A started script; use as a context manager so it is always stopped and its files closed."""

    def __init__(
        self, argv: Sequence[str], cwd: str, env: Mapping[str, str], logs: Path, grace_period: float
    ) -> None:
        self.grace_period = grace_period
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logs / "stdout.log"
        self.stderr_path = logs / "stderr.log"
        self.report_path = logs / "reports.jsonl"
        self.report_path.write_bytes(b"")
        self._report_offset = 0
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in close()
        try:
            self._popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        except OSError as exc:
            self._stderr.close()
            raise ProgramFailed(f"cannot start {argv[0]!r} in {cwd}: {exc.strerror or exc}") from None
        self._reader = threading.Thread(target=self._copy_stdout, name="lmtune-program-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    def _copy_stdout(self) -> None:
        assert self._popen.stdout is not None
        with open(self.stdout_path, "wb") as copy:
            for raw in self._popen.stdout:
                copy.write(raw)
                copy.flush()
                self._lines.put(raw.decode(errors="replace").rstrip("\r\n"))

    def wait(self, timeout: float) -> int | None:
        """The exit code once the script ended (after the rest of its stdout was read), else None after
        ``timeout`` seconds."""
        try:
            code = self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(_READER_JOIN)
        return code

    def stdout_lines(self) -> list[str]:
        """The lines the script printed since the last call."""
        lines = []
        with contextlib.suppress(queue.Empty):
            while True:
                lines.append(self._lines.get_nowait())
        return lines

    def report_lines(self) -> list[str]:
        """The complete lines :func:`lmtune.report` appended since the last call."""
        with open(self.report_path, "rb") as reports:
            reports.seek(self._report_offset)
            data = reports.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._report_offset += len(complete)
        return complete.decode(errors="replace").splitlines()

    def stop(self) -> None:
        """SIGTERM to the script's process group, SIGKILL after the grace period (seconds) if it still runs."""
        if self._popen.poll() is None:
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + self.grace_period
            while self._popen.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        self._signal(signal.SIGKILL)  # the script, or what it left running
        self._popen.wait()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def stderr_tail(self, lines: int = 10, chars: int = 2000) -> str:
        """The last lines the script wrote to stderr (at most ``chars`` characters)."""
        self._stderr.flush()
        text = self.stderr_path.read_text(errors="replace").rstrip()
        return "\n".join(text.splitlines()[-lines:])[-chars:]

    def close(self) -> None:
        self.stop()
        self._reader.join(_READER_JOIN)
        if self._popen.stdout is not None:
            self._popen.stdout.close()
        self._stderr.close()

    def __enter__(self) -> ScriptProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
