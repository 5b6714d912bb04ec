"""The executor contract and the loop every out-of-process executor shares.

The loop asks the study for a trial whenever a slot is free (storage reserves it atomically, so workers on other
machines never get the same one), hands it to the executor to run elsewhere, and, when it ends, reads the outcome
from storage. A trial whose process vanished before telling its outcome is failed "worker lost" (and retried when
the study's retry policy says so); one that runs past ``trial_timeout`` is killed and failed.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError, TooManyFailedTrialsError
from lmtune.executors.ref import StudyRef
from lmtune.executors.retry import fail_lost_trial
from lmtune.executors.settings import ExecutionSettings
from lmtune.trial import Trial, TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Callback, Study

__all__ = ["Executor", "Launched", "make_executor"]

logger = logging.getLogger("lmtune")

POLL_INTERVAL = 0.5  # seconds between checks while trials run
STALE_CHECK_INTERVAL = 0.5  # seconds between looks for lost trials of other workers while waiting for them
TIMEOUT_REASON = "timeout: the trial ran longer than trial_timeout={:g} s and was killed"
INTERRUPTED = "interrupted"
PROCESS_ATTR = "process"  # system attribute a trial process sets when it begins: {"host": ..., "pid": ...}


@dataclass
class Launched:
    """A trial running elsewhere: its number, when it was launched (monotonic seconds), the executor's handle,
    and when its process began the trial (None until it says so in storage; the timeout counts from then, so a
    slow process start or a queue in Ray does not eat into it)."""

    trial_id: int
    number: int
    launched_at: float
    handle: Any
    extra: dict[str, Any] = field(default_factory=dict)
    started: float | None = None


def check_limits(n_trials: int | None, total_trials: int | None, timeout: float | None) -> None:
    for name, limit in (("n_trials", n_trials), ("total_trials", total_trials)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ConfigError(f"{name} must be a non-negative integer, but got {limit!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"timeout must be a positive number of seconds, but got {timeout!r}")


class Executor(ABC):
    """Runs a study's trials outside the calling thread; storage stays the source of truth.

    Subclasses say how many trials may run at once and how to start, watch and kill one. The objective must
    reach other processes: a top-level function of an importable module (or a study file's objective).
    """

    def __init__(self, trial_timeout: float | None = None) -> None:
        self.trial_timeout = trial_timeout

    # What a subclass provides -------------------------------------------------------------------------------------
    @abstractmethod
    def _start(self, ref: StudyRef) -> int:
        """Prepare to run trials of ``ref``; return how many may run at once."""

    def _has_room(self) -> bool:
        """Whether the resources for one more trial are free (checked before a trial is asked for)."""
        return True

    @abstractmethod
    def _launch(self, ref: StudyRef, trial: Trial) -> Launched:
        """Start ``trial`` (``_has_room()`` said its resources are free)."""

    @abstractmethod
    def _wait(self, running: Sequence[Launched], timeout: float) -> list[tuple[Launched, str | None]]:
        """Wait up to ``timeout`` seconds; return the trials that ended, each with None when its process ended
        normally, or else a description of how it died ("killed by SIGKILL")."""

    @abstractmethod
    def _kill(self, launched: Launched) -> None:
        """Stop a trial's processes now and free its resources."""

    def _shutdown(self) -> None:  # noqa: B027 - most executors hold nothing between runs
        """Release what ``_start`` set up."""

    # The loop ---------------------------------------------------------------------------------------------------
    def optimize(
        self,
        study: Study,
        objective: Callable[..., Any],
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        total_trials: int | None = None,
        max_failed_trials: int | None = 10,
        callbacks: Sequence[Callback] = (),
        wait_for_running: bool = False,
    ) -> None:
        """Run trials until a limit is reached; the arguments mean what they mean for :meth:`Study.optimize`."""
        check_limits(n_trials, total_trials, timeout)
        ref = StudyRef.from_study(study, objective)
        capacity = self._start(ref)
        loop = _Loop(
            self,
            study,
            ref,
            capacity,
            n_trials,
            total_trials,
            timeout,
            max_failed_trials,
            callbacks,
            wait_for_running,
        )
        try:
            loop.run()
        except BaseException:
            loop.abort(INTERRUPTED)
            raise
        finally:
            self._shutdown()

    def settle(self, study: Study, launched: Launched, death: str | None) -> TrialRecord:
        """The outcome of an ended trial, failing it "worker lost" when its process died without telling one."""
        study.release(launched.trial_id)
        record = study.storage.get_trial(launched.trial_id)
        if record.state is TrialState.RUNNING:
            why = f"trial process {death}" if death else "trial process ended without recording an outcome"
            fail_lost_trial(study, launched.trial_id, why)
            record = study.storage.get_trial(launched.trial_id)
        return record


class _Loop:
    """One run of :meth:`Executor.optimize`: the bookkeeping between asking, launching and settling."""

    def __init__(
        self,
        executor: Executor,
        study: Study,
        ref: StudyRef,
        capacity: int,
        n_trials: int | None,
        total_trials: int | None,
        timeout: float | None,
        max_failed_trials: int | None,
        callbacks: Sequence[Callback],
        wait_for_running: bool,
    ) -> None:
        self.executor, self.study, self.ref, self.capacity = executor, study, ref, capacity
        self.n_trials, self.total_trials = n_trials, total_trials
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.max_failed_trials, self.callbacks, self.wait_for_running = (
            max_failed_trials,
            callbacks,
            wait_for_running,
        )
        self.running: list[Launched] = []
        self.launched = 0
        self.failures_in_a_row = 0
        self.last_failure: TrialRecord | None = None
        self.last_stale_check = 0.0

    def _may_launch(self) -> bool:
        if (
            self.failures_in_a_row
            and self.max_failed_trials
            and self.failures_in_a_row >= self.max_failed_trials
        ):
            return False
        if self.n_trials is not None and self.launched >= self.n_trials:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return False
        if len(self.running) >= self.capacity or not self.executor._has_room():
            return False
        return not self.study.nothing_left_to_try()

    def _launch_one(self) -> bool:
        """Ask for a trial and launch it; False when the study has none to give now."""
        trial = self.study.ask(max_trials=self.total_trials)
        if trial is None:
            return False
        try:
            launched = self.executor._launch(self.ref, trial)
        except BaseException as exc:
            self.study.tell(trial, state=TrialState.FAILED, failure_reason=f"could not start: {exc}")
            raise
        self.running.append(launched)
        self.launched += 1
        return True

    def _finish(self, launched: Launched, death: str | None) -> None:
        self.running.remove(launched)
        self._count(self.executor.settle(self.study, launched, death))

    def _count(self, record: TrialRecord) -> None:
        self.failures_in_a_row = self.failures_in_a_row + 1 if record.state is TrialState.FAILED else 0
        if record.state is TrialState.FAILED:
            self.last_failure = record
        for callback in self.callbacks:
            callback(self.study, record)

    def _kill_overdue(self) -> None:
        limit = self.executor.trial_timeout
        if limit is None:
            return
        now = time.monotonic()
        if any(r.started is None for r in self.running):
            began = {
                r.trial_id
                for r in self.study.storage.get_trials(self.study.study_id, [TrialState.RUNNING])
                if PROCESS_ATTR in r.system_attrs
            }
            for launched in self.running:
                if launched.started is None and launched.trial_id in began:
                    launched.started = now
        for launched in [r for r in self.running if r.started is not None and now - r.started > limit]:
            self.executor._kill(launched)
            self.running.remove(launched)
            self.study.release(launched.trial_id)
            try:
                record = self.study.tell(
                    launched.number, state=TrialState.FAILED, failure_reason=TIMEOUT_REASON.format(limit)
                )
            except Exception:  # it told its outcome at the last moment
                record = self.study.storage.get_trial(launched.trial_id)
            self._count(record)

    def _wait_for_others(self) -> bool:
        """Whether to ask again: another worker's lost trial was just failed (its slot is free now), or other
        workers still run trials that may fail and need replacing (then wait a moment first)."""
        now = time.monotonic()
        if now - self.last_stale_check >= STALE_CHECK_INTERVAL:
            self.last_stale_check = now
            if self.study.fail_stale_trials():
                return True
        if self.study.get_trials([TrialState.RUNNING]):
            time.sleep(POLL_INTERVAL)
            return True
        return False

    def run(self) -> None:
        while True:
            outcome = self._launch_one() if self._may_launch() else None
            if outcome:
                continue
            if not self.running:
                waiting = outcome is False and self.wait_for_running and self.total_trials is not None
                if waiting and self._wait_for_others():
                    continue
                break
            for launched, death in self.executor._wait(self.running, POLL_INTERVAL):
                self._finish(launched, death)
            self._kill_overdue()
        if self.max_failed_trials and self.failures_in_a_row >= self.max_failed_trials:
            reason = self.last_failure.failure_reason if self.last_failure else None
            raise TooManyFailedTrialsError(
                f"{self.failures_in_a_row} trials failed in a row in study {self.study.study_name!r}; the last "
                f"reason: {reason}. Fix the objective, or raise max_failed_trials."
            )

    def abort(self, reason: str) -> None:
        """Kill every running trial and fail it with ``reason`` (Ctrl-C, or an error in the loop)."""
        for launched in list(self.running):
            self.executor._kill(launched)
            self.study.release(launched.trial_id)
            try:
                self.study.tell(launched.number, state=TrialState.FAILED, failure_reason=reason)
            except Exception:
                logger.debug("trial %d ended before it could be failed", launched.number, exc_info=True)
        self.running.clear()


def make_executor(settings: ExecutionSettings) -> Executor | None:
    """The executor the settings ask for; None when trials run in the calling process."""
    if settings.in_process:
        return None
    if settings.executor == "ray":
        from lmtune.executors.ray import RayExecutor

        return RayExecutor(
            workers=settings.workers,
            resources=settings.resources,
            trial_timeout=settings.trial_timeout,
            **dict(settings.executor_options),
        )
    from lmtune.executors.local import LocalExecutor

    return LocalExecutor(
        workers=settings.workers, resources=settings.resources, trial_timeout=settings.trial_timeout
    )
