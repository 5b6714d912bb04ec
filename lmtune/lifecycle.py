"""The life cycle of a trial inside a run: the one place that turns an objective's outcome into a state, and the
limits every loop obeys.

Every loop that runs trials uses it — :meth:`lmtune.study.Study.optimize` in this process, the process pool and
Ray (:mod:`lmtune.executors.base`, whose trial processes end their trial with :func:`run_trial`), fused groups
(:mod:`lmtune.executors.fused`) and the simulated clock (:mod:`lmtune.executors.simulated`):

* :func:`run_trial` runs an objective on a trial and :func:`finish_trial` tells the outcome: COMPLETE, PRUNED,
  PAUSED or FAILED. ``Study.tell`` records it and applies the study's checkpoint budget.
* :class:`RunLimits` holds one run's limits (``n_trials``, ``total_trials``, ``timeout``, ``max_failed_trials``),
  counts failures in a row, calls the callbacks, and waits for other workers' trials when asked to.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError, LmtuneError, TooManyFailedTrialsError, TrialPruned, TrialStateError
from lmtune.trial import BUDGET, RESUME_FROM, RETRY_COUNT, RETRY_OF, Trial, TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Callback, Study

__all__ = [
    "INTERRUPTED",
    "RunLimits",
    "check_limits",
    "continuation_attrs",
    "fail_interrupted",
    "finish_trial",
    "run_trial",
]

logger = logging.getLogger("lmtune")

INTERRUPTED = (
    "interrupted"  # failure reason of trials running when Ctrl-C (or an error in the loop) ended a run
)
UNCAUGHT = "the objective raised an uncaught error"
POLL_INTERVAL = 0.5  # seconds between looks at other workers' trials while waiting for them
STALE_CHECK_INTERVAL = 0.5  # seconds between looks for lost trials of other workers


def finish_trial(
    study: Study, trial: Trial, value: Any = None, error: BaseException | None = None
) -> TrialRecord:
    """Tell ``trial``'s outcome: PRUNED when ``error`` is :class:`TrialPruned`, FAILED with the error's name and
    message for any other error, PAUSED or PRUNED when the scheduler asked for it at the last report, else
    COMPLETE with ``value`` (FAILED when it is not a finite number)."""
    if isinstance(error, TrialPruned):
        return study.tell(trial, state=TrialState.PRUNED)
    if error is not None:
        return study.tell(trial, state=TrialState.FAILED, failure_reason=f"{type(error).__name__}: {error}")
    if trial.pause_requested:
        return study.tell(trial, state=TrialState.PAUSED)
    if trial.should_stop():
        return study.tell(trial, state=TrialState.PRUNED)
    return study.tell(trial, value)


def run_trial(
    study: Study,
    objective: Callable[[Trial], Any],
    trial: Trial,
    catch: tuple[type[BaseException], ...] = (Exception,),
) -> TrialRecord:
    """Run ``objective`` on ``trial`` and tell the outcome. Errors in ``catch`` fail the trial; Ctrl-C and other
    errors fail it too and are raised again."""
    try:
        value = objective(trial)
    except TrialPruned as exc:
        return finish_trial(study, trial, error=exc)
    except KeyboardInterrupt:
        fail_interrupted(study, trial.trial_id)  # the next run resumes it
        raise
    except catch as exc:
        if not isinstance(exc, LmtuneError):  # lmtune's own errors say all in their message
            logger.error("trial %d raised:\n%s", trial.number, traceback.format_exc().rstrip())
        return finish_trial(study, trial, error=exc)
    except BaseException:
        study.tell(trial, state=TrialState.FAILED, failure_reason=UNCAUGHT)
        raise
    return finish_trial(study, trial, value)


def continuation_attrs(record: TrialRecord, retry_count: int) -> dict[str, Any]:
    """The system attributes of a WAITING copy that continues ``record``: the trial it replaces, the checkpoint it
    resumes from, its budget."""
    attrs: dict[str, Any] = {RETRY_OF: record.number, RETRY_COUNT: retry_count}
    resume = record.checkpoint_dir or record.resume_from
    if resume:
        attrs[RESUME_FROM] = resume
    if record.budget is not None:
        attrs[BUDGET] = record.budget
    return attrs


def fail_interrupted(study: Study, trial_id: int) -> TrialRecord | None:
    """Fail a trial stopped by Ctrl-C (or an error in the loop) "interrupted" and, in the same storage step, enqueue
    a copy that resumes from its checkpoint, so running the command again continues it. An interruption is not the
    trial's fault: the copy is made whatever the retry policy and uses none of its retries, and the checkpoint
    stays because the waiting copy needs it. None when the trial had finished already."""
    study.release(trial_id)
    try:
        record, copy = study.storage.fail_trial(
            study.study_id,
            trial_id,
            INTERRUPTED,
            lambda failed: continuation_attrs(failed, failed.retry_count),
        )
    except TrialStateError:
        return None
    if copy is not None:
        logger.warning(
            "trial %d was interrupted; the next run resumes it as trial %d", record.number, copy.number
        )
    return record


def check_limits(
    n_trials: int | None, total_trials: int | None, timeout: float | None, max_failed_trials: int | None
) -> None:
    """Refuse limits that are not what they say: counts are non-negative integers, ``max_failed_trials`` a
    positive one (None: no limit), ``timeout`` positive seconds."""
    for name, limit in (("n_trials", n_trials), ("total_trials", total_trials)):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ConfigError(f"{name} must be a non-negative integer, but got {limit!r}")
    if max_failed_trials is not None and (
        isinstance(max_failed_trials, bool) or not isinstance(max_failed_trials, int) or max_failed_trials < 1
    ):
        raise ConfigError(
            f"max_failed_trials must be a positive integer (or None for no limit), but got {max_failed_trials!r}"
        )
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ConfigError(f"timeout must be a positive number of seconds, but got {timeout!r}")


class RunLimits:
    """One run's limits and counts: whether another trial may start, the failures in a row, the callbacks.

    ``n_trials``: how many trials this run starts; ``total_trials``: the study's size, passed to ``ask``;
    ``timeout``: seconds after which no trial starts; ``max_failed_trials``: failures in a row that end the run
    with :class:`TooManyFailedTrialsError` (None: no limit); ``wait_for_running``: with ``total_trials``, wait for
    other workers' trials instead of ending while they may still fail and need replacing.
    """

    def __init__(
        self,
        study: Study,
        n_trials: int | None = None,
        timeout: float | None = None,
        *,
        total_trials: int | None = None,
        max_failed_trials: int | None = 10,
        callbacks: Sequence[Callback] = (),
        wait_for_running: bool = False,
    ) -> None:
        check_limits(n_trials, total_trials, timeout, max_failed_trials)
        self.study = study
        self.n_trials, self.total_trials, self.timeout = n_trials, total_trials, timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.max_failed_trials = max_failed_trials
        self.callbacks = tuple(callbacks)
        self.wait_for_running = wait_for_running
        self.started = 0
        self.failures_in_a_row = 0
        self.last_failure: TrialRecord | None = None
        self._last_stale_check = 0.0
        self._timed_out = False

    @property
    def failed_too_often(self) -> bool:
        return self.max_failed_trials is not None and self.failures_in_a_row >= self.max_failed_trials

    def may_start(self) -> bool:
        """Whether the limits let one more trial start (the study may still have none to give)."""
        if self.failed_too_often or (self.n_trials is not None and self.started >= self.n_trials):
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            if not self._timed_out:
                logger.info("timeout of %.1f s reached: no new trial starts", self.timeout)
                self._timed_out = True
            return False
        return True

    def ask(self) -> Trial | None:
        """The study's next trial within ``total_trials``, counted as started; None when it has none now."""
        trial = self.study.ask(max_trials=self.total_trials)
        if trial is not None:
            self.started += 1
        return trial

    def record(self, record: TrialRecord) -> None:
        """Count a finished trial (failures in a row) and call the callbacks with it."""
        if record.state is TrialState.FAILED:
            self.failures_in_a_row += 1
            self.last_failure = record
        else:
            self.failures_in_a_row = 0
        for callback in self.callbacks:
            callback(self.study, record)

    def raise_if_failed_too_often(self, what: str = "the objective") -> None:
        if self.failed_too_often:
            reason = self.last_failure.failure_reason if self.last_failure else None
            raise TooManyFailedTrialsError(
                f"{self.failures_in_a_row} trials failed in a row in study {self.study.study_name!r}; the last "
                f"reason: {reason}. Fix {what}, or raise max_failed_trials."
            )

    def wait_for_others(self) -> bool:
        """With ``wait_for_running`` and ``total_trials``: whether to ask again because another worker's lost trial
        was just failed (its place is free), or because other workers still run trials that may fail and need
        replacing (after a moment's wait). False when there is nothing to wait for."""
        if not self.wait_for_running or self.total_trials is None:
            return False
        now = time.monotonic()
        if now - self._last_stale_check >= STALE_CHECK_INTERVAL:
            self._last_stale_check = now
            if self.study.fail_stale_trials():
                return True
        if self.study.get_trials([TrialState.RUNNING]):
            time.sleep(POLL_INTERVAL)
            return True
        return False
