"""Prepared statements of the SQL storage, and the conversion of its rows to records.

Statements are built once; each call only binds values, which keeps SQLAlchemy's per-call work small.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import bindparam, cast, insert, or_, select, update

from lmtune.exceptions import LmtuneError, StorageError
from lmtune.space import Distribution
from lmtune.storage._common import decode_distributions, dumps
from lmtune.storage._sql_schema import studies, trials
from lmtune.storage.base import StudyInfo
from lmtune.trial import ALLOWED_TRANSITIONS, TrialRecord, TrialState

T = TypeVar("T")

TRIAL_COLUMNS = [c for c in trials.c if c.name != "study_id"]
SELECT_TRIAL = select(*TRIAL_COLUMNS).where(trials.c.trial_id == bindparam("tid"))
SELECT_TRIALS = select(*TRIAL_COLUMNS).where(trials.c.study_id == bindparam("sid")).order_by(trials.c.number)
# get_trials' four queries, keyed by (filter on states, filter on seq).
TRIALS_QUERIES = {
    (by_state, by_seq): SELECT_TRIALS.where(
        *([trials.c.state.in_(bindparam("states", expanding=True))] if by_state else []),
        *([trials.c.seq > bindparam("since")] if by_seq else []),
    )
    for by_state in (False, True)
    for by_seq in (False, True)
}
SELECT_STUDY = select(studies)
INSERT_TRIAL = insert(trials)
# Executed with a dict of column values: SQLAlchemy sets exactly those columns.
UPDATE_TRIAL = update(trials).where(trials.c.trial_id == bindparam("tid"))
BUMP = (
    update(studies)
    .where(studies.c.study_id == bindparam("sid"))
    .values(
        seq=studies.c.seq + bindparam("d_seq"),
        n_trials=studies.c.n_trials + bindparam("d_trials"),
        n_failed=studies.c.n_failed + bindparam("d_failed"),
    )
    .returning(studies.c.seq, studies.c.n_trials, studies.c.n_failed)
)
# finish_trial's update, which only applies from a state that may go to the target state.
FINISH = (
    update(trials)
    .where(trials.c.trial_id == bindparam("tid"), trials.c.state.in_(bindparam("sources", expanding=True)))
    .returning(*TRIAL_COLUMNS)
)
SOURCES = {
    target: [s.value for s, targets in ALLOWED_TRANSITIONS.items() if target in targets]
    for target in TrialState
}


# PostgreSQL: trial writes as single statements, each its own transaction (one round trip, no BEGIN or COMMIT).
# Bound names must differ from the studies table's column names, or the bump would set them too.
# The CTE bumps the study's counter first, which locks the study row until the statement commits, so seq order
# stays commit order. The bump happens even when the trial update matches no row: an unused seq, no change.
def _bump_cte(**counts: Any) -> Any:
    return (
        update(studies)
        .where(studies.c.study_id == bindparam("sid"))
        .values(seq=studies.c.seq + 1, **counts)
        .returning(studies.c.seq, studies.c.n_trials)
        .cte("bump")
    )


_BUMPED = _bump_cte()
# Compare-and-set: applies only while the trial is as last read (every trial write stamps a new seq).
PG_CAS = (
    update(trials)
    .where(trials.c.trial_id == bindparam("tid"), trials.c.seq == bindparam("old_seq"))
    .values(seq=select(_BUMPED.c.seq).scalar_subquery())
    .returning(*TRIAL_COLUMNS)
)
# finish_trial to a state that does not change the count of FAILED trials.
PG_FINISH = (
    update(trials)
    .where(trials.c.trial_id == bindparam("tid"), trials.c.state.in_(bindparam("sources", expanding=True)))
    .values(seq=select(_BUMPED.c.seq).scalar_subquery())
    .returning(*TRIAL_COLUMNS)
)
# create_trial: takes the next number only while the study has room (``max_trials`` None: always).
_NUMBERED = (
    update(studies)
    .where(
        studies.c.study_id == bindparam("sid"),
        or_(
            bindparam("max_trials", type_=trials.c.number.type).is_(None),
            studies.c.n_trials - studies.c.n_failed < bindparam("max_trials", type_=trials.c.number.type),
        ),
    )
    .values(seq=studies.c.seq + 1, n_trials=studies.c.n_trials + 1)
    .returning(studies.c.seq, studies.c.n_trials)
    .cte("numbered")
)
_NEW_COLUMNS = [c for c in trials.c if c.name not in ("trial_id", "number", "seq")]
PG_CREATE = (
    insert(trials)
    .from_select(
        [*(c.name for c in _NEW_COLUMNS), "number", "seq"],
        select(
            # Values bound as "new_<column>": a bound name equal to a column name of either table would be added to
            # that table's SET clause. Cast, so that NULLs are typed too.
            *(cast(bindparam(f"new_{c.name}"), c.type) for c in _NEW_COLUMNS),
            _NUMBERED.c.n_trials - 1,
            _NUMBERED.c.seq,
        ),
    )
    .returning(trials.c.trial_id, trials.c.number, trials.c.seq)
)

OLDEST_WAITING = (
    select(trials.c.trial_id)
    .where(trials.c.study_id == bindparam("sid"), trials.c.state == TrialState.WAITING.value)
    .order_by(trials.c.number)
    .limit(1)
)
STALE = (
    select(trials.c.trial_id)
    .where(
        trials.c.study_id == bindparam("sid"),
        trials.c.state == TrialState.RUNNING.value,
        (trials.c.heartbeat_at.is_(None)) | (trials.c.heartbeat_at < bindparam("limit")),
    )
    .order_by(trials.c.number)
)


def loads(text_value: str | None) -> dict[str, Any]:
    """A JSON object column as a dict (most are empty)."""
    return {} if not text_value or text_value == "{}" else json.loads(text_value)


def _damaged_row_is_storage_error(read: Callable[[Mapping[Any, Any]], T]) -> Callable[[Mapping[Any, Any]], T]:
    """A row that cannot be decoded (bad JSON, an unknown state) is a StorageError naming it, not a crash."""

    @functools.wraps(read)
    def wrapper(row: Mapping[Any, Any]) -> T:
        try:
            return read(row)
        except (ValueError, TypeError, KeyError, LmtuneError) as exc:
            which = f"trial {row['trial_id']}" if "trial_id" in row else f"study {row.get('name')!r}"
            raise StorageError(
                f"the database holds a damaged row ({which}: {type(exc).__name__}: {exc}); it was written by "
                f"something other than lmtune: repair or delete that row, or use another database"
            ) from None

    return wrapper


@lru_cache(maxsize=4096)
def decoded_distributions(text_value: str) -> dict[str, Distribution]:
    # Trials of one space share a few distribution texts; decoding each once keeps history reads cheap.
    return decode_distributions(loads(text_value))


@_damaged_row_is_storage_error
def record_from_row(row: Mapping[Any, Any]) -> TrialRecord:
    """A trial row (or a row with the values just written merged in) as an immutable record."""
    return TrialRecord(
        trial_id=row["trial_id"],
        number=row["number"],
        state=TrialState(row["state"]),
        params=loads(row["params"]),
        distributions=dict(decoded_distributions(row["distributions"])),
        value=row["value"],
        intermediate={int(k): v for k, v in loads(row["intermediate"]).items()},
        user_attrs=loads(row["user_attrs"]),
        system_attrs=loads(row["system_attrs"]),
        failure_reason=row["failure_reason"],
        worker_id=row["worker_id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        seq=row["seq"],
    )


@_damaged_row_is_storage_error
def study_from_row(row: Mapping[Any, Any]) -> StudyInfo:
    return StudyInfo(
        study_id=row["study_id"],
        name=row["name"],
        direction=row["direction"],
        space=row["space"],
        attrs=loads(row["attrs"]),
        created_at=row["created_at"],
        n_trials=row["n_trials"],
    )


def json_value(value: Any) -> Any:
    """The value as it will read back (tuples become lists); ConfigError when it is not JSON-able."""
    return json.loads(dumps(value))
