"""What a study shows in the terminal while it runs: live progress, one log format, no foreign progress bars.

On a terminal, a rich display redrawn in place: one row per running trial (its optimizer step out of the total, the
epoch, the metric at its last evaluation and an ETA from its measured step times) under one study line (finished,
pruned and failed trials, the best value so far and an ETA from the budget). When stdout or stderr is not a
terminal (a file, a CI log, a pipe) the same facts come as plain log lines without control codes: one per finished
trial, and one per running trial every ``plain_interval`` seconds.

Running trials are read from storage, so trials of worker processes show too. Step counts come from the
``train_progress`` user attribute (:class:`lmtune.executors.packing.ProgressReport`); a trial without it shows
its last reported step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmtune.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from lmtune.study import Study

__all__ = [
    "StudyProgress",
    "TrialProgress",
    "configure_logging",
    "quiet_third_party_bars",
    "study_line",
    "trial_line",
    "trial_progress",
]

PROGRESS_ATTR = "train_progress"  # written by lmtune.executors.packing.ProgressReport
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("sqlalchemy", "urllib3", "filelock", "httpx")
HF_BARS_ENV = (
    "HF_HUB_DISABLE_PROGRESS_BARS"  # transformers and huggingface_hub read it; trial processes inherit it
)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

logger = logging.getLogger("lmtune")
_console: Console | None = None


def console() -> Console:
    """The one rich console on stderr that log lines and the live display share, so logs print above it."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console


def is_terminal() -> bool:
    """True when both stdout and stderr (where progress is drawn) are an interactive terminal: output sent to a
    file or a pipe (``| tee run.log``) gets plain lines."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def configure_logging(verbose: bool = False) -> None:
    """One handler for every logger: rich columns (time, level, message) on a terminal, else one plain line
    ``time LEVEL logger: message``. Replaces handlers others installed, so no line carries two prefixes."""
    handler: logging.Handler
    if is_terminal():
        from rich.logging import RichHandler

        handler = RichHandler(console=console(), show_path=False, rich_tracebacks=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


@contextlib.contextmanager
def quiet_third_party_bars() -> Iterator[None]:
    """Switch off the tqdm bars of transformers, huggingface_hub and datasets (e.g. "Loading weights") while
    lmtune shows its own progress; trial processes started meanwhile inherit the switch. Restored on exit."""
    previous = os.environ.get(HF_BARS_ENV)
    os.environ[HF_BARS_ENV] = "1"
    _set_hf_bars(enabled=False)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(HF_BARS_ENV, None)
        else:
            os.environ[HF_BARS_ENV] = previous
        _set_hf_bars(enabled=previous not in ("1", "true", "True", "yes"))


def _set_hf_bars(enabled: bool) -> None:
    """Apply to the libraries already imported (those imported later read the environment variable)."""
    switches = {
        "transformers.utils.logging": ("enable_progress_bar", "disable_progress_bar"),
        "huggingface_hub.utils": ("enable_progress_bars", "disable_progress_bars"),
        "datasets.utils.logging": ("enable_progress_bar", "disable_progress_bar"),
    }
    for module_name, (on, off) in switches.items():
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, on if enabled else off):
            with contextlib.suppress(Exception):
                getattr(module, on if enabled else off)()


# What one running trial shows -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrialProgress:
    """A running trial's position: optimizer steps done and planned, steps per epoch, its last evaluation and
    the seconds per step measured so far (None when unknown)."""

    number: int
    step: int | None
    total_steps: int | None
    steps_per_epoch: int | None
    last_report: tuple[int, float] | None  # (reported step, value)
    seconds_per_step: float | None

    @property
    def eta(self) -> float | None:
        """Seconds until its last planned step, from the measured step time (None when unknown)."""
        if self.step is None or self.total_steps is None or self.seconds_per_step is None:
            return None
        return max(0, self.total_steps - self.step) * self.seconds_per_step


def trial_progress(
    record: TrialRecord, first_seen: tuple[int, float] | None = None, now: float | None = None
) -> TrialProgress:
    """The position of running trial ``record``. Seconds per step come from two samples of its progress
    attribute (``first_seen``: steps and time when first read), or else from its start."""
    info = record.user_attrs.get(PROGRESS_ATTR) or {}
    steps_run = info.get("steps")
    step = info.get("step", steps_run)
    last = None
    if record.intermediate:
        last_step = max(record.intermediate)
        last = (last_step, float(record.intermediate[last_step]))
    seconds = None
    if steps_run and info.get("time") is not None:
        if first_seen is not None and steps_run > first_seen[0] and info["time"] > first_seen[1]:
            seconds = (info["time"] - first_seen[1]) / (steps_run - first_seen[0])
        elif record.started_at is not None and info["time"] > record.started_at:
            seconds = (info["time"] - record.started_at) / steps_run
    return TrialProgress(
        number=record.number,
        step=int(step) if step is not None else None,
        total_steps=info.get("total_steps"),
        steps_per_epoch=info.get("steps_per_epoch"),
        last_report=last,
        seconds_per_step=seconds,
    )


def duration_text(seconds: float | None) -> str:
    """``h:mm:ss``, or ``-:--:--`` when unknown."""
    if seconds is None:
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _epoch_text(p: TrialProgress) -> str:
    if p.step is None or not p.steps_per_epoch:
        return ""
    epoch = min(p.step // p.steps_per_epoch + 1, -(-(p.total_steps or p.step) // p.steps_per_epoch))
    epochs = -(-p.total_steps // p.steps_per_epoch) if p.total_steps else None
    return f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"


def trial_line(p: TrialProgress, metric: str) -> str:
    """``trial 3: step 12/36, epoch 1/2, accuracy 0.812 at step 12, ETA 0:00:41``."""
    parts = [f"trial {p.number}:"]
    if p.step is not None:
        parts.append(f"step {p.step}/{p.total_steps}," if p.total_steps else f"step {p.step},")
    epoch = _epoch_text(p)
    if epoch:
        parts.append(epoch + ",")
    if p.last_report is not None:
        parts.append(f"{metric} {p.last_report[1]:.4g} at step {p.last_report[0]},")
    else:
        parts.append("not evaluated yet,")
    parts.append(f"ETA {duration_text(p.eta)}")
    return " ".join(parts)


# What the study shows ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyStatus:
    """Counts, the best trial and the ETA of a study at one moment."""

    name: str
    finished: int
    pruned: int
    failed: int
    running: int
    total: int | None
    best: TrialRecord | None
    eta: float | None


def study_eta(
    records: Sequence[TrialRecord],
    running: Sequence[TrialProgress],
    total: int | None,
    deadline: float | None,
    now: float,
) -> float | None:
    """Seconds until the budget is spent: the running trials' own ETAs, plus the trials still to start at the
    mean duration of the finished ones (or of the running ones' expected length), as many at once as now run;
    never beyond the ``deadline`` (Unix seconds) of a time budget."""
    durations = [r.duration for r in records if r.state.is_finished() and r.duration is not None]
    started = {r.number: r.started_at for r in records if r.state is TrialState.RUNNING}
    lengths = [
        now - started[p.number] + p.eta
        for p in running
        if p.eta is not None and started.get(p.number) is not None
    ]
    mean = sum(durations or lengths) / len(durations or lengths) if durations or lengths else None
    by_budget = None
    if total is not None:
        to_start = max(0, total - sum(r.state in FINISHED for r in records) - len(running))
        left = []
        for p in running:
            elapsed = now - (started.get(p.number) or now)
            left.append(p.eta if p.eta is not None else None if mean is None else max(0.0, mean - elapsed))
        if None not in left and (mean is not None or not to_start):
            by_budget = max(left, default=0.0) + to_start * (mean or 0.0) / max(1, len(running))  # type: ignore[type-var]
    by_time = None if deadline is None else max(0.0, deadline - now)
    if by_budget is None:
        return by_time
    return by_budget if by_time is None else min(by_budget, by_time)


def study_line(status: StudyStatus, metric: str) -> str:
    """``sst2: 4/9 finished (2 pruned), 0 failed, 1 running | best accuracy 0.845 (trial 2) | ETA 0:01:50``."""
    of = f"/{status.total}" if status.total else ""
    best = (
        "best -"
        if status.best is None or status.best.value is None
        else f"best {metric} {status.best.value:.4g} (trial {status.best.number})"
    )
    return (
        f"{status.name}: {status.finished}{of} finished ({status.pruned} pruned), {status.failed} failed, "
        f"{status.running} running | {best} | ETA {duration_text(status.eta)}"
    )


class StudyProgress:
    """A study callback and context manager that shows the study's progress while ``optimize`` runs.

    ``total``: the finished trials the study should hold; ``timeout``: its time budget in seconds (from entering
    the context); ``metric``: the name of the value (the task's metric). ``live`` forces the terminal display on
    or off (default: on when stdout and stderr are a terminal).
    """

    def __init__(
        self,
        study: Study,
        total: int | None = None,
        *,
        timeout: float | None = None,
        metric: str = "value",
        live: bool | None = None,
        refresh: float = 1.0,
        plain_interval: float = 30.0,
    ) -> None:
        self.study = study
        self.total = total
        self.timeout = timeout
        self.metric = metric
        self.live = is_terminal() if live is None else live
        self.refresh = refresh
        self.plain_interval = plain_interval
        self._first_seen: dict[int, tuple[int, float]] = {}
        self._deadline: float | None = None
        self._display: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._quiet = quiet_third_party_bars()

    # Snapshot -------------------------------------------------------------------------------------------------
    def snapshot(self, now: float | None = None) -> tuple[StudyStatus, list[TrialProgress]]:
        """The study's status and its running trials' progress, read from storage now."""
        now = time.time() if now is None else now
        history = self.study.history()
        records = list(history)
        running = []
        for record in records:
            if record.state is not TrialState.RUNNING:
                continue
            info = record.user_attrs.get(PROGRESS_ATTR) or {}
            if info.get("steps") is not None and info.get("time") is not None:
                self._first_seen.setdefault(record.number, (int(info["steps"]), float(info["time"])))
            running.append(trial_progress(record, self._first_seen.get(record.number), now))
        status = StudyStatus(
            name=self.study.study_name,
            finished=sum(r.state in FINISHED for r in records),
            pruned=sum(r.state is TrialState.PRUNED for r in records),
            failed=sum(r.state is TrialState.FAILED for r in records),
            running=len(running),
            total=self.total,
            best=history.best(),
            eta=study_eta(records, running, self.total, self._deadline, now),
        )
        return status, running

    # Display --------------------------------------------------------------------------------------------------
    def render(self) -> RenderableType:
        """The live display: the study line with a bar, then one row per running trial."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        status, running = self.snapshot()
        head = Table.grid(padding=(0, 1))
        head.add_row(
            ProgressBar(total=status.total or None, completed=status.finished, width=30),
            Text(study_line(status, self.metric), style="bold"),
        )
        rows = Table.grid(padding=(0, 1))
        for p in running:
            rows.add_row(
                ProgressBar(total=p.total_steps, completed=p.step or 0, width=20),
                Text(trial_line(p, self.metric)),
            )
        return Group(head, rows)

    def __enter__(self) -> StudyProgress:
        self._deadline = None if self.timeout is None else time.time() + self.timeout
        self._quiet.__enter__()
        if self.live:
            from rich.live import Live

            self._display = Live(
                get_renderable=self.render,
                console=console(),
                refresh_per_second=1 / self.refresh,
                redirect_stdout=False,
                redirect_stderr=True,
            )
            self._display.start()
        else:
            self._thread = threading.Thread(target=self._plain_loop, name="lmtune-progress", daemon=True)
            self._thread.start()
        return self

    def _plain_loop(self) -> None:
        while not self._stop.wait(self.plain_interval):
            with contextlib.suppress(Exception):  # a storage hiccup must not end the study
                _, running = self.snapshot()
                for p in running:
                    logger.info("%s", trial_line(p, self.metric))

    def __call__(self, study: Study, record: TrialRecord) -> None:
        """After each trial: a plain line with its outcome (the live display redraws by itself)."""
        if self.live:
            return
        status, _ = self.snapshot()
        value = "" if record.value is None else f" {self.metric} {record.value:.4g}"
        at = f" at step {record.last_step}" if record.last_step is not None else ""
        logger.info(
            "trial %d %s%s%s | %s",
            record.number,
            record.state.value,
            value,
            at,
            study_line(status, self.metric),
        )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._display is not None:
            self._display.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._quiet.__exit__(None, None, None)
