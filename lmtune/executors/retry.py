"""Re-running trials whose worker was lost: a killed process, a lost machine, a crashed trial process.

A lost trial is FAILED with a reason starting "worker lost"; with ``retry: {max_retries: N}`` a WAITING copy of it
(same parameters, ``retry_of`` = the lost trial's number, ``resume_from`` = its checkpoint folder where it wrote one)
is enqueued, and whichever worker asks next runs it. Errors raised by the objective are not retried: they would
fail again. A trial stopped by Ctrl-C is continued the same way whatever the policy
(:func:`lmtune.lifecycle.fail_interrupted`): the next run resumes it. Where a worker sees the trial's process vanish, failing it and enqueuing the copy are one storage step,
so a study filled up to its trial count stays exact.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import TrialStateError
from lmtune.lifecycle import continuation_attrs
from lmtune.storage._common import WORKER_LOST
from lmtune.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["RetryPolicy", "fail_lost_trial", "is_lost"]

logger = logging.getLogger("lmtune")


def is_lost(record: TrialRecord) -> bool:
    """Whether the trial failed because the process running it vanished (not because the objective raised)."""
    return record.state is TrialState.FAILED and (record.failure_reason or "").startswith(WORKER_LOST)


@dataclass(frozen=True)
class RetryPolicy:
    """Re-run a lost trial up to ``max_retries`` times (counted along its chain of retries)."""

    max_retries: int = 0

    def enqueue_retries(self, study: Study, failed: Iterable[TrialRecord]) -> list[TrialRecord]:
        """Enqueue a retry of each lost trial in ``failed`` that has retries left; return the new trials.

        Call it only with trials this process itself moved to FAILED (storage lets one process win that move),
        so a lost trial is retried once, not once per worker that noticed it.
        """
        retries = []
        for record in failed:
            attrs = self.retry_attrs(record)
            if attrs is None:
                continue
            retry = study.storage.create_trial(
                study.study_id,
                state=TrialState.WAITING,
                params=record.params,
                distributions=record.distributions,
                system_attrs=attrs,
            )
            if retry is not None:
                self.say_retried(record, retry)
                retries.append(retry)
        return retries

    def retry_attrs(self, record: TrialRecord) -> dict[str, Any] | None:
        """The system attributes of a failed trial's retry; None when it is not lost or has no retries left."""
        attempt = record.retry_count
        if not is_lost(record) or attempt >= self.max_retries:
            return None
        return continuation_attrs(record, attempt + 1)

    def say_retried(self, record: TrialRecord, retry: TrialRecord) -> None:
        logger.warning(
            "trial %d (%s) is retried as trial %d, attempt %d of %d",
            record.number,
            record.failure_reason,
            retry.number,
            retry.retry_count,
            self.max_retries,
        )


def fail_lost_trial(study: Study, trial_id: int, reason: str) -> TrialRecord | None:
    """Fail a RUNNING trial whose process vanished (reason "worker lost: ...") and retry it if the study's policy
    says so. None when the trial was finished already (it told its outcome, or another worker failed it)."""
    full_reason = reason if reason.startswith(WORKER_LOST) else f"{WORKER_LOST}: {reason}"
    policy = study.retry
    try:
        record, retry = study.storage.fail_trial(
            study.study_id, trial_id, full_reason, policy.retry_attrs if policy is not None else None
        )
    except TrialStateError:
        return None
    logger.warning("trial %d failed: %s", record.number, full_reason)
    if policy is not None and retry is not None:
        policy.say_retried(record, retry)
    return record
