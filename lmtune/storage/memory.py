"""In-memory storage: the default for Python scripts and tests; shared by the threads of one process."""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from lmtune.exceptions import DuplicatedStudyError, StudyNotFoundError
from lmtune.space import Distribution
from lmtune.storage._common import WORKER_LOST, check_transition, check_writable, dumps, now
from lmtune.storage.base import ACTIVE_OR_DONE, RetryAttrs, Storage, StudyInfo
from lmtune.trial import TrialRecord, TrialState

__all__ = ["InMemoryStorage"]

_PLAIN = (str, int, bool, type(None))


def _changed(record: TrialRecord, **changes: Any) -> TrialRecord:
    """``dataclasses.replace`` without re-running the frozen ``__init__`` (this runs for every write)."""
    new = object.__new__(TrialRecord)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(changes)
    return new


def _stored(value: Any) -> Any:
    """``value`` as a JSON round trip gives it back (the other backends store JSON); plain scalars skip the trip."""
    kind = type(value)
    if kind in _PLAIN or (kind is float and math.isfinite(value)):
        return value
    return json.loads(dumps(value))


class InMemoryStorage(Storage):
    """Keeps studies in dictionaries guarded by one lock. Nothing survives the process."""

    url = "memory://"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, StudyInfo] = {}
        self._trials: dict[int, TrialRecord] = {}
        self._study_trials: dict[int, list[int]] = {}
        self._trial_study: dict[int, int] = {}
        self._seq: dict[int, int] = {}
        # Per study, trial ids in the order of their last change, so a read of what changed since a sequence number
        # costs the changes, not the study's size.
        self._changed: dict[int, OrderedDict[int, None]] = {}
        self._ids = itertools.count()
        self._trial_ids = itertools.count()

    # Studies ------------------------------------------------------------------------------------------------
    def create_study(
        self, name: str, direction: str, space: str | None = None, attrs: Mapping[str, Any] | None = None
    ) -> StudyInfo:
        with self._lock:
            if name in self._studies:
                raise DuplicatedStudyError(f"a study named {name!r} exists already")
            attrs = json.loads(dumps(dict(attrs or {})))
            info = StudyInfo(next(self._ids), name, direction, space, attrs, now())
            self._studies[name] = info
            self._study_trials[info.study_id] = []
            self._seq[info.study_id] = 0
            self._changed[info.study_id] = OrderedDict()
            return info

    def get_study(self, name: str) -> StudyInfo:
        with self._lock:
            if name not in self._studies:
                raise StudyNotFoundError(f"no study named {name!r} in {self.url}")
            info = self._studies[name]
            return replace(info, n_trials=len(self._study_trials[info.study_id]))

    def list_studies(self) -> list[StudyInfo]:
        with self._lock:
            return [self.get_study(name) for name in self._studies]

    def delete_study(self, name: str) -> None:
        with self._lock:
            info = self.get_study(name)
            self._changed.pop(info.study_id)
            for trial_id in self._study_trials.pop(info.study_id):
                del self._trials[trial_id]
                del self._trial_study[trial_id]
            del self._studies[name]

    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        with self._lock:
            for name, info in self._studies.items():
                if info.study_id == study_id:
                    attrs = dict(info.attrs)
                    attrs[key] = json.loads(dumps(value))
                    self._studies[name] = replace(info, attrs=attrs)
                    return
            raise StudyNotFoundError(f"no study with id {study_id}")

    # Trials ---------------------------------------------------------------------------------------------------
    def _bump(self, study_id: int, trial_id: int) -> int:
        self._seq[study_id] += 1
        changed = self._changed[study_id]
        changed[trial_id] = None
        changed.move_to_end(trial_id)
        return self._seq[study_id]

    def _update(self, trial_id: int, **changes: Any) -> TrialRecord:
        record = _changed(
            self._trials[trial_id], seq=self._bump(self._trial_study[trial_id], trial_id), **changes
        )
        self._trials[trial_id] = record
        return record

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
        if state not in (TrialState.WAITING, TrialState.RUNNING):
            raise ValueError(f"a new trial must be WAITING or RUNNING, not {state.value}")
        with self._lock:
            ids = self._study_trials[study_id]
            if max_trials is not None:
                taken = sum(self._trials[i].state in ACTIVE_OR_DONE for i in ids)
                if taken >= max_trials:
                    return None
            t = now()
            trial_id = next(self._trial_ids)
            record = TrialRecord(
                trial_id=trial_id,
                number=len(ids),
                state=state,
                params={name: _stored(value) for name, value in (params or {}).items()},
                distributions=dict(distributions or {}),
                system_attrs=json.loads(dumps(dict(system_attrs or {}))),
                worker_id=worker_id,
                started_at=t if state is TrialState.RUNNING else None,
                heartbeat_at=t if state is TrialState.RUNNING else None,
                seq=self._bump(study_id, trial_id),
            )
            self._trials[record.trial_id] = record
            ids.append(record.trial_id)
            self._trial_study[record.trial_id] = study_id
            return record

    def claim_trial(self, study_id: int, worker_id: str | None = None) -> TrialRecord | None:
        with self._lock:
            for trial_id in self._study_trials[study_id]:
                if self._trials[trial_id].state is TrialState.WAITING:
                    t = now()
                    return self._update(
                        trial_id, state=TrialState.RUNNING, worker_id=worker_id, started_at=t, heartbeat_at=t
                    )
            return None

    def resume_trial(self, trial_id: int, worker_id: str | None = None) -> TrialRecord | None:
        with self._lock:
            if self._trials[trial_id].state is not TrialState.PAUSED:
                return None
            return self._update(trial_id, state=TrialState.RUNNING, worker_id=worker_id, heartbeat_at=now())

    def get_trial(self, trial_id: int) -> TrialRecord:
        with self._lock:
            return self._trials[trial_id]

    def get_trials(
        self, study_id: int, states: Collection[TrialState] | None = None, since_seq: int | None = None
    ) -> list[TrialRecord]:
        with self._lock:
            if since_seq is None:
                records = [self._trials[i] for i in self._study_trials[study_id]]
            else:
                records = []
                for trial_id in reversed(self._changed[study_id]):
                    record = self._trials[trial_id]
                    if record.seq <= since_seq:
                        break
                    records.append(record)
                records.sort(key=lambda r: r.number)
        if states is not None:
            records = [r for r in records if r.state in states]
        return records

    def set_trial_param(self, trial_id: int, name: str, value: Any, distribution: Distribution) -> None:
        self.set_trial_params(trial_id, {name: value}, {name: distribution})

    def set_trial_params(
        self, trial_id: int, params: Mapping[str, Any], distributions: Mapping[str, Distribution]
    ) -> None:
        with self._lock:
            record = self._trials[trial_id]
            check_writable(record.number, record.state)
            self._update(
                trial_id,
                params={**record.params, **{name: _stored(value) for name, value in params.items()}},
                distributions={**record.distributions, **distributions},
            )

    def report(self, trial_id: int, step: int, value: float) -> TrialRecord:
        with self._lock:
            record = self._trials[trial_id]
            check_writable(record.number, record.state)
            return self._update(trial_id, intermediate={**record.intermediate, int(step): float(value)})

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._lock:
            record = self._trials[trial_id]
            self._update(trial_id, user_attrs={**record.user_attrs, key: json.loads(dumps(value))})

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._lock:
            record = self._trials[trial_id]
            self._update(trial_id, system_attrs={**record.system_attrs, key: json.loads(dumps(value))})

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        value: float | None = None,
        failure_reason: str | None = None,
    ) -> TrialRecord:
        with self._lock:
            record = self._trials[trial_id]
            check_transition(record.number, record.state, state)
            return self._update(
                trial_id,
                state=state,
                value=value,
                failure_reason=failure_reason,
                finished_at=now() if state.is_finished() else None,
            )

    def fail_trial(
        self, study_id: int, trial_id: int, failure_reason: str, retry: RetryAttrs | None = None
    ) -> tuple[TrialRecord, TrialRecord | None]:
        with self._lock:  # re-entrant: both steps happen under it, which makes them one
            return super().fail_trial(study_id, trial_id, failure_reason, retry)

    def heartbeat(self, trial_ids: Collection[int]) -> None:
        with self._lock:
            t = now()
            for trial_id in trial_ids:
                if self._trials[trial_id].state is TrialState.RUNNING:
                    self._trials[trial_id] = _changed(self._trials[trial_id], heartbeat_at=t)

    def fail_stale_trials(self, study_id: int, grace_seconds: float) -> list[TrialRecord]:
        with self._lock:
            limit = now() - grace_seconds
            failed = []
            for trial_id in self._study_trials[study_id]:
                record = self._trials[trial_id]
                if record.state is TrialState.RUNNING and (record.heartbeat_at or 0) < limit:
                    failed.append(self.finish_trial(trial_id, TrialState.FAILED, failure_reason=WORKER_LOST))
            return failed
