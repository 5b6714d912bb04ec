"""The loop every out-of-process executor shares (the local pool, Ray).

The loop asks the study for a trial whenever a slot is free (storage reserves it atomically, so workers on other
machines never get the same one), hands it to the executor to run elsewhere, and, when it ends, reads the outcome
from storage. The process running the trial tells its outcome itself (:func:`lmtune.lifecycle.run_trial`, with
the study's options: the checkpoint budget runs there). A trial whose process vanished before telling its outcome
is failed "worker lost" (and retried when the study's retry policy says so); one that runs past ``trial_timeout``
is killed and failed.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError
from lmtune.executors.base import Executor
from lmtune.executors.ref import StudyRef
from lmtune.executors.retry import fail_lost_trial
from lmtune.lifecycle import INTERRUPTED, POLL_INTERVAL, RunLimits, fail_interrupted
from lmtune.trial import Trial, TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["Launched", "ProcessExecutor"]

logger = logging.getLogger("lmtune")

TIMEOUT_REASON = "timeout: the trial ran longer than trial_timeout={:g} s and was killed"


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


class ProcessExecutor(Executor):
    """Runs a study's trials in other processes; storage stays the source of truth.

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
    def _run(self, limits: RunLimits, objective: Callable[..., Any] | None) -> None:
        if objective is None:
            raise ConfigError(f"{type(self).__name__}.optimize needs an objective")
        ref = StudyRef.from_study(limits.study, objective)
        loop = _Loop(self, limits, ref, self._start(ref))
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
    """One run of a :class:`ProcessExecutor`: the bookkeeping between asking, launching and settling."""

    def __init__(self, executor: ProcessExecutor, limits: RunLimits, ref: StudyRef, capacity: int) -> None:
        self.executor, self.limits, self.ref, self.capacity = executor, limits, ref, capacity
        self.study = limits.study
        self.running: list[Launched] = []

    def _may_launch(self) -> bool:
        if not self.limits.may_start():
            return False
        if len(self.running) >= self.capacity or not self.executor._has_room():
            return False
        return not self.study.nothing_left_to_try()

    def _launch_one(self) -> bool:
        """Ask for a trial and launch it; False when the study has none to give now."""
        trial = self.limits.ask()
        if trial is None:
            return False
        try:
            launched = self.executor._launch(self.ref, trial)
        except BaseException as exc:
            self.study.tell(trial, state=TrialState.FAILED, failure_reason=f"could not start: {exc}")
            raise
        self.running.append(launched)
        return True

    def _finish(self, launched: Launched, death: str | None) -> None:
        self.running.remove(launched)
        self.limits.record(self.executor.settle(self.study, launched, death))

    def _kill_overdue(self) -> None:
        limit = self.executor.trial_timeout
        if limit is None:
            return
        now = time.monotonic()
        if any(r.started is None for r in self.running):
            began = {
                r.trial_id
                for r in self.study.storage.get_trials(self.study.study_id, [TrialState.RUNNING])
                if r.process is not None
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
            self.limits.record(record)

    def run(self) -> None:
        while True:
            outcome = self._launch_one() if self._may_launch() else None
            if outcome:
                continue
            if not self.running:
                if outcome is False and self.limits.wait_for_others():
                    continue
                break
            for launched, death in self.executor._wait(self.running, POLL_INTERVAL):
                self._finish(launched, death)
            self._kill_overdue()
        self.limits.raise_if_failed_too_often()

    def abort(self, reason: str) -> None:
        """Kill every running trial and fail it with ``reason`` (Ctrl-C, or an error in the loop)."""
        for launched in list(self.running):
            self.executor._kill(launched)
            if reason == INTERRUPTED:  # the next run resumes it
                fail_interrupted(self.study, launched.trial_id)
                continue
            self.study.release(launched.trial_id)
            try:
                self.study.tell(launched.number, state=TrialState.FAILED, failure_reason=reason)
            except Exception:
                logger.debug("trial %d ended before it could be failed", launched.number, exc_info=True)
        self.running.clear()
