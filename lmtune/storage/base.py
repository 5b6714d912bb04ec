"""The storage protocol: the single source of truth shared by every worker of a study.

Contract for implementations (the conformance suite in :mod:`lmtune.testing.storage` checks it):

* Thread- and process-safe: any number of threads and processes may call any method at the same time; each call
  is atomic. Trial numbers are dense per study (0, 1, 2, ...) and never reused.
* Records come back as new immutable :class:`~lmtune.trial.TrialRecord` objects; callers never mutate storage
  through them.
* State transitions follow :data:`lmtune.trial.ALLOWED_TRANSITIONS`; an illegal one raises
  :class:`~lmtune.exceptions.TrialStateError` and changes nothing. Finished trials are read-only.
* Every write to a trial bumps the study's change counter and stamps the trial's ``seq``, so readers can fetch only
  what changed since their last read (``get_trials(since_seq=...)``).
* Values are JSON: parameters, attributes and study metadata must be JSON-serialisable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from lmtune.space import Distribution
from lmtune.trial import TrialRecord, TrialState

__all__ = ["SCHEMA_VERSION", "RetryAttrs", "StudyInfo", "Storage"]

SCHEMA_VERSION = 1

# Given a trial just failed, the system attributes of its retry, or None for no retry (see Storage.fail_trial).
RetryAttrs = Callable[[TrialRecord], Mapping[str, Any] | None]

# States that hold a slot towards a study's trial target: finished or still in the works.
ACTIVE_OR_DONE = (
    TrialState.WAITING,
    TrialState.RUNNING,
    TrialState.PAUSED,
    TrialState.COMPLETE,
    TrialState.PRUNED,
)


@dataclass(frozen=True)
class StudyInfo:
    """A study's identity and metadata. ``space`` is the declared space as JSON text, or None (define-by-run)."""

    study_id: int
    name: str
    direction: str
    space: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    created_at: float | None = None
    n_trials: int = 0


class Storage(ABC):
    """Abstract storage backend. See the module docstring for the contract."""

    url: str = ""

    # Studies ------------------------------------------------------------------------------------------------
    @abstractmethod
    def create_study(
        self, name: str, direction: str, space: str | None = None, attrs: Mapping[str, Any] | None = None
    ) -> StudyInfo:
        """Create a study; raise ``DuplicatedStudyError`` when the name is taken."""

    @abstractmethod
    def get_study(self, name: str) -> StudyInfo:
        """Return a study by name; raise ``StudyNotFoundError`` when absent."""

    @abstractmethod
    def list_studies(self) -> list[StudyInfo]:
        """All studies, oldest first, with their trial counts."""

    @abstractmethod
    def delete_study(self, name: str) -> None:
        """Delete a study and all its trials; raise ``StudyNotFoundError`` when absent."""

    @abstractmethod
    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        """Set one JSON-able study attribute."""

    # Trials ---------------------------------------------------------------------------------------------------
    @abstractmethod
    def create_trial(
        self,
        study_id: int,
        *,
        state: TrialState = TrialState.RUNNING,
        params: Mapping[str, Any] | None = None,
        distributions: Mapping[str, Distribution] | None = None,
        system_attrs: Mapping[str, Any] | None = None,
        worker_id: str | None = None,
        max_trials: int | None = None,
    ) -> TrialRecord | None:
        """Create a WAITING or RUNNING trial with the next number.

        With ``max_trials``, create it only while fewer than that many trials are WAITING, RUNNING, PAUSED,
        COMPLETE or PRUNED, and return None otherwise: the check and the insert are one atomic step, so workers
        racing to fill a study stop at exactly ``max_trials``.
        """

    @abstractmethod
    def claim_trial(self, study_id: int, worker_id: str | None = None) -> TrialRecord | None:
        """Atomically move the oldest WAITING trial to RUNNING for this worker; None when there is none."""

    @abstractmethod
    def resume_trial(self, trial_id: int, worker_id: str | None = None) -> TrialRecord | None:
        """Atomically move a PAUSED trial to RUNNING; None when another worker took it first."""

    @abstractmethod
    def get_trial(self, trial_id: int) -> TrialRecord:
        """One trial by id; ``KeyError`` when absent."""

    @abstractmethod
    def get_trials(
        self, study_id: int, states: Collection[TrialState] | None = None, since_seq: int | None = None
    ) -> list[TrialRecord]:
        """Trials of a study ordered by number; only those in ``states`` and changed after ``since_seq``."""

    @abstractmethod
    def set_trial_param(self, trial_id: int, name: str, value: Any, distribution: Distribution) -> None:
        """Record one parameter of a RUNNING or WAITING trial."""

    @abstractmethod
    def set_trial_params(
        self, trial_id: int, params: Mapping[str, Any], distributions: Mapping[str, Distribution]
    ) -> None:
        """Record several parameters in one write."""

    @abstractmethod
    def report(self, trial_id: int, step: int, value: float) -> TrialRecord:
        """Record an intermediate value of a RUNNING trial; return the updated record."""

    @abstractmethod
    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        """Set one JSON-able user attribute."""

    @abstractmethod
    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        """Set one JSON-able attribute owned by lmtune (budget, checkpoint folder, lineage, ...)."""

    @abstractmethod
    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        value: float | None = None,
        failure_reason: str | None = None,
    ) -> TrialRecord:
        """Move a trial to ``state`` (COMPLETE, PRUNED, FAILED or PAUSED) and return the new record."""

    def fail_trial(
        self, study_id: int, trial_id: int, failure_reason: str, retry: RetryAttrs | None = None
    ) -> tuple[TrialRecord, TrialRecord | None]:
        """FAIL a trial and, when ``retry(failed record)`` gives system attributes, enqueue a WAITING copy with
        the same parameters and those attributes; return (failed record, the copy or None).

        Backends make the two one atomic step, so the slot the failure frees goes to the copy, never to a trial
        another worker creates in between: a study filled up to ``max_trials`` stays exact. This default takes two
        steps, for backends that cannot do better.
        """
        failed = self.finish_trial(trial_id, TrialState.FAILED, None, failure_reason)
        attrs = retry(failed) if retry is not None else None
        if attrs is None:
            return failed, None
        copy = self.create_trial(
            study_id,
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            system_attrs=attrs,
        )
        return failed, copy

    @abstractmethod
    def heartbeat(self, trial_ids: Collection[int]) -> None:
        """Stamp the current time on these RUNNING trials."""

    @abstractmethod
    def fail_stale_trials(self, study_id: int, grace_seconds: float) -> list[TrialRecord]:
        """Fail (reason "worker lost") RUNNING trials whose last heartbeat is older than the grace period."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for backends without connections
        """Release connections; the storage must not be used afterwards."""
