"""SQL storage through SQLAlchemy 2 Core: a SQLite file by default, PostgreSQL for studies spread over machines.

One row per study and one per trial; parameters, distributions, intermediate values and attributes are JSON text.
Every trial write first bumps the study row's change counter ``seq`` and stamps the trial with it. That row update
also locks the study, so the writers of one study take turns and ``seq`` order is commit order: a reader that has
seen ``seq`` N has seen every change up to N, which is what ``get_trials(since_seq=N)`` relies on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from lmtune.exceptions import (
    ConfigError,
    DuplicatedStudyError,
    SchemaVersionError,
    StorageError,
    StudyNotFoundError,
)
from lmtune.space import Distribution
from lmtune.storage._common import (
    WORKER_LOST,
    check_transition,
    check_writable,
    decode_distributions,
    dumps,
    encode_distributions,
    now,
)
from lmtune.storage._sql_engine import Database
from lmtune.storage._sql_schema import (
    MIGRATIONS,
    Migration,
    check_version,
    create_schema,
    migrate_one_step,
    stored_version,
    studies,
    trials,
)
from lmtune.storage.base import SCHEMA_VERSION, Storage, StudyInfo
from lmtune.trial import ALLOWED_TRANSITIONS, TrialRecord, TrialState

__all__ = ["SQLStorage", "upgrade_schema"]

# Statements are built once; each call only binds values, which keeps SQLAlchemy's per-call work small.
_TRIAL_COLUMNS = [c for c in trials.c if c.name != "study_id"]
_SELECT_TRIAL = select(*_TRIAL_COLUMNS).where(trials.c.trial_id == bindparam("tid"))
_SELECT_TRIALS = (
    select(*_TRIAL_COLUMNS).where(trials.c.study_id == bindparam("sid")).order_by(trials.c.number)
)
# get_trials' four queries, keyed by (filter on states, filter on seq).
_TRIALS_QUERIES = {
    (by_state, by_seq): _SELECT_TRIALS.where(
        *([trials.c.state.in_(bindparam("states", expanding=True))] if by_state else []),
        *([trials.c.seq > bindparam("since")] if by_seq else []),
    )
    for by_state in (False, True)
    for by_seq in (False, True)
}
_SELECT_STUDY = select(studies)
_INSERT_TRIAL = insert(trials)
# Executed with a dict of column values: SQLAlchemy sets exactly those columns.
_UPDATE_TRIAL = update(trials).where(trials.c.trial_id == bindparam("tid"))
_BUMP = (
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
_FINISH = (
    update(trials)
    .where(trials.c.trial_id == bindparam("tid"), trials.c.state.in_(bindparam("sources", expanding=True)))
    .returning(*_TRIAL_COLUMNS)
)
_SOURCES = {
    target: [s.value for s, targets in ALLOWED_TRANSITIONS.items() if target in targets]
    for target in TrialState
}
_OLDEST_WAITING = (
    select(trials.c.trial_id)
    .where(trials.c.study_id == bindparam("sid"), trials.c.state == TrialState.WAITING.value)
    .order_by(trials.c.number)
    .limit(1)
)
_STALE = (
    select(trials.c.trial_id)
    .where(
        trials.c.study_id == bindparam("sid"),
        trials.c.state == TrialState.RUNNING.value,
        (trials.c.heartbeat_at.is_(None)) | (trials.c.heartbeat_at < bindparam("limit")),
    )
    .order_by(trials.c.number)
)
_SCHEMA_LOCK_KEY = 0x6C6D74756E65  # PostgreSQL advisory lock taken while creating or migrating the tables


class _Unchanged(Exception):
    """Raised inside a write transaction to roll it back: the call answers None and changes nothing."""


def _loads(text_value: str | None) -> dict[str, Any]:
    return {} if not text_value or text_value == "{}" else json.loads(text_value)


@lru_cache(maxsize=4096)
def _decoded_distributions(text_value: str) -> dict[str, Distribution]:
    # Trials of one space share a few distribution texts; decoding each once keeps history reads cheap.
    return decode_distributions(_loads(text_value))


def _record(row: Mapping[Any, Any]) -> TrialRecord:
    return TrialRecord(
        trial_id=row["trial_id"],
        number=row["number"],
        state=TrialState(row["state"]),
        params=_loads(row["params"]),
        distributions=dict(_decoded_distributions(row["distributions"])),
        value=row["value"],
        intermediate={int(k): v for k, v in _loads(row["intermediate"]).items()},
        user_attrs=_loads(row["user_attrs"]),
        system_attrs=_loads(row["system_attrs"]),
        failure_reason=row["failure_reason"],
        worker_id=row["worker_id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"],
        seq=row["seq"],
    )


def _study_info(row: RowMapping) -> StudyInfo:
    return StudyInfo(
        study_id=row["study_id"],
        name=row["name"],
        direction=row["direction"],
        space=row["space"],
        attrs=_loads(row["attrs"]),
        created_at=row["created_at"],
        n_trials=row["n_trials"],
    )


def _json_value(value: Any) -> Any:
    """The value as it will read back (tuples become lists); ConfigError when it is not JSON-able."""
    return json.loads(dumps(value))


def _lock_schema(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})


def _open_or_create(conn: Connection) -> int:
    _lock_schema(conn)
    version = stored_version(conn)
    if version is None:
        create_schema(conn)
        return SCHEMA_VERSION
    return version


class SQLStorage(Storage):
    """Storage in a SQL database (``sqlite:///FILE.db``, ``sqlite:///:memory:``, ``postgresql+psycopg://...``).

    Safe for any number of threads and processes. Opening a database without lmtune tables creates them; a
    database written by another schema version raises :class:`~lmtune.exceptions.SchemaVersionError`.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._db = Database(url)
        self._trial_study: dict[int, int] = {}  # trial id -> study id, which never changes
        version = self._db.read(stored_version)
        if version is None:
            version = self._db.write(_open_or_create)
        check_version(version, self._db.shown_url)

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to another process as its URL; the receiver opens its own connections.
        if self._db.memory:
            raise StorageError(
                "an in-memory SQLite storage lives in one process; use a sqlite:///FILE.db URL"
            )
        return (SQLStorage, (self.url,))

    def __repr__(self) -> str:
        return f"SQLStorage({self._db.shown_url!r})"

    # Studies ------------------------------------------------------------------------------------------------
    def create_study(
        self, name: str, direction: str, space: str | None = None, attrs: Mapping[str, Any] | None = None
    ) -> StudyInfo:
        attrs_text = dumps(dict(attrs or {}))

        def tx(conn: Connection) -> None:
            if conn.execute(select(studies.c.study_id).where(studies.c.name == name)).first() is not None:
                raise DuplicatedStudyError(f"a study named {name!r} exists already")
            try:
                conn.execute(
                    insert(studies).values(
                        name=name,
                        direction=direction,
                        space=space,
                        attrs=attrs_text,
                        created_at=now(),
                        seq=0,
                        n_trials=0,
                        n_failed=0,
                    )
                )
            except IntegrityError:  # another process created it between our check and our insert
                raise DuplicatedStudyError(f"a study named {name!r} exists already") from None

        self._db.write(tx)
        return self.get_study(name)

    def get_study(self, name: str) -> StudyInfo:
        row = self._db.read(lambda c: c.execute(_SELECT_STUDY.where(studies.c.name == name)).first())
        if row is None:
            raise StudyNotFoundError(f"no study named {name!r} in {self._db.shown_url}")
        return _study_info(row._mapping)

    def list_studies(self) -> list[StudyInfo]:
        rows = self._db.read(lambda c: c.execute(_SELECT_STUDY.order_by(studies.c.study_id)).all())
        return [_study_info(row._mapping) for row in rows]

    def delete_study(self, name: str) -> None:
        def tx(conn: Connection) -> int:
            sid = conn.execute(
                select(studies.c.study_id).where(studies.c.name == name).with_for_update()
            ).scalar_one_or_none()
            if sid is None:
                raise StudyNotFoundError(f"no study named {name!r} in {self._db.shown_url}")
            conn.execute(delete(trials).where(trials.c.study_id == sid))
            conn.execute(delete(studies).where(studies.c.study_id == sid))
            return int(sid)

        sid = self._db.write(tx)
        for trial_id in [t for t, s in self._trial_study.items() if s == sid]:
            self._trial_study.pop(trial_id, None)

    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        value = _json_value(value)

        def tx(conn: Connection) -> None:
            text_value = conn.execute(
                select(studies.c.attrs).where(studies.c.study_id == study_id).with_for_update()
            ).scalar_one_or_none()
            if text_value is None:
                raise StudyNotFoundError(f"no study with id {study_id} in {self._db.shown_url}")
            attrs = {**_loads(text_value), key: value}
            conn.execute(
                update(studies).where(studies.c.study_id == study_id).values(attrs=json.dumps(attrs))
            )

        self._db.write(tx)

    # Trial writes -------------------------------------------------------------------------------------------
    def _bump(
        self, conn: Connection, study_id: int, *, seq: int = 1, new: int = 0, failed: int = 0
    ) -> tuple[int, int, int]:
        """Lock the study row and add to its change counter, trial count and count of FAILED trials.

        Returns (seq, n_trials, n_failed) after the update.
        """
        args = {"sid": study_id, "d_seq": seq, "d_trials": new, "d_failed": failed}
        row = conn.execute(_BUMP, args).first()
        if row is None:
            raise StudyNotFoundError(f"no study with id {study_id} in {self._db.shown_url}")
        return int(row[0]), int(row[1]), int(row[2])

    def _study_of(self, trial_id: int) -> int:
        if trial_id not in self._trial_study:
            sid = self._db.read(
                lambda c: c.execute(select(trials.c.study_id).where(trials.c.trial_id == trial_id)).scalar()
            )
            if sid is None:
                raise KeyError(f"no trial with id {trial_id} in {self._db.shown_url}")
            self._trial_study[trial_id] = int(sid)
        return self._trial_study[trial_id]

    def _change_trial(
        self, trial_id: int, change: Callable[[RowMapping], dict[str, Any] | None], *, answer: bool = True
    ) -> TrialRecord | None:
        """In one transaction: lock the study, read the trial, apply ``change(row)`` (None: change nothing).

        Returns the new record, or None when nothing changed or no ``answer`` is wanted.
        """
        study_id = self._study_of(trial_id)

        def tx(conn: Connection) -> TrialRecord | None:
            seq, _, _ = self._bump(conn, study_id)
            row = conn.execute(_SELECT_TRIAL, {"tid": trial_id}).one()._mapping
            values = change(row)
            if values is None:
                raise _Unchanged
            values["seq"] = seq
            conn.execute(_UPDATE_TRIAL, {**values, "tid": trial_id})
            return _record({**row, **values}) if answer else None

        try:
            return self._db.write(tx)
        except _Unchanged:
            return None

    def _write_or_none(self, tx: Callable[[Connection], TrialRecord], study_id: int) -> TrialRecord | None:
        """Run a trial write; None when it found nothing to do. Remembers the new record's study."""
        try:
            record = self._db.write(tx)
        except _Unchanged:
            return None
        self._trial_study[record.trial_id] = study_id  # only once committed: a rolled-back id may be reused
        return record

    # Trials ---------------------------------------------------------------------------------------------------
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
        t = now() if state is TrialState.RUNNING else None
        values: dict[str, Any] = {
            "study_id": study_id,
            "state": state.value,
            "params": dumps(dict(params or {})),
            "distributions": json.dumps(encode_distributions(distributions or {})),
            "intermediate": "{}",
            "user_attrs": "{}",
            "system_attrs": dumps(dict(system_attrs or {})),
            "worker_id": worker_id,
            "started_at": t,
            "heartbeat_at": t,
            "value": None,
            "failure_reason": None,
            "finished_at": None,
        }

        def tx(conn: Connection) -> TrialRecord:
            seq, n_trials, n_failed = self._bump(conn, study_id, new=1)
            number = n_trials - 1
            if max_trials is not None and number - n_failed >= max_trials:  # FAILED trials hold no slot
                raise _Unchanged
            row = {**values, "number": number, "seq": seq}
            trial_id = cast(Any, conn.execute(_INSERT_TRIAL, row).inserted_primary_key)[0]
            return _record({**row, "trial_id": int(trial_id)})

        return self._write_or_none(tx, study_id)

    def claim_trial(self, study_id: int, worker_id: str | None = None) -> TrialRecord | None:
        # A plain read first: most calls find nothing waiting and need no write lock.
        if self._db.read(lambda c: c.execute(_OLDEST_WAITING, {"sid": study_id}).first()) is None:
            return None

        def tx(conn: Connection) -> TrialRecord:
            seq, _, _ = self._bump(conn, study_id)
            trial_id = conn.execute(_OLDEST_WAITING, {"sid": study_id}).scalar()
            if trial_id is None:
                raise _Unchanged
            t = now()
            values = {
                "state": TrialState.RUNNING.value,
                "worker_id": worker_id,
                "started_at": t,
                "heartbeat_at": t,
                "seq": seq,
            }
            conn.execute(_UPDATE_TRIAL, {**values, "tid": trial_id})
            return _record(conn.execute(_SELECT_TRIAL, {"tid": trial_id}).one()._mapping)

        return self._write_or_none(tx, study_id)

    def resume_trial(self, trial_id: int, worker_id: str | None = None) -> TrialRecord | None:
        def change(row: RowMapping) -> dict[str, Any] | None:
            if row["state"] != TrialState.PAUSED.value:
                return None
            return {"state": TrialState.RUNNING.value, "worker_id": worker_id, "heartbeat_at": now()}

        return self._change_trial(trial_id, change)

    def get_trial(self, trial_id: int) -> TrialRecord:
        row = self._db.read(lambda c: c.execute(_SELECT_TRIAL, {"tid": trial_id}).first())
        if row is None:
            raise KeyError(f"no trial with id {trial_id} in {self._db.shown_url}")
        return _record(row._mapping)

    def get_trials(
        self, study_id: int, states: Collection[TrialState] | None = None, since_seq: int | None = None
    ) -> list[TrialRecord]:
        query = _TRIALS_QUERIES[states is not None, since_seq is not None]
        args: dict[str, Any] = {"sid": study_id, "since": since_seq}
        if states is not None:
            args["states"] = [TrialState(s).value for s in states]
        rows = self._db.read(lambda c: c.execute(query, args).all())
        return [_record(row._mapping) for row in rows]

    def set_trial_param(self, trial_id: int, name: str, value: Any, distribution: Distribution) -> None:
        self.set_trial_params(trial_id, {name: value}, {name: distribution})

    def set_trial_params(
        self, trial_id: int, params: Mapping[str, Any], distributions: Mapping[str, Distribution]
    ) -> None:
        new_params = _json_value(dict(params))
        new_distributions = encode_distributions(distributions)

        def change(row: RowMapping) -> dict[str, Any]:
            check_writable(row["number"], TrialState(row["state"]))
            return {
                "params": json.dumps({**_loads(row["params"]), **new_params}),
                "distributions": json.dumps({**_loads(row["distributions"]), **new_distributions}),
            }

        self._change_trial(trial_id, change, answer=False)

    def report(self, trial_id: int, step: int, value: float) -> TrialRecord:
        step, value = int(step), float(value)
        if not math.isfinite(value):
            raise ConfigError(
                f"an intermediate value must be a finite number, but got {value!r} at step {step}"
            )

        def change(row: RowMapping) -> dict[str, Any]:
            check_writable(row["number"], TrialState(row["state"]))
            return {"intermediate": json.dumps({**_loads(row["intermediate"]), str(step): value})}

        return cast(TrialRecord, self._change_trial(trial_id, change))  # ``change`` never answers None

    def _set_attr(self, trial_id: int, column: str, key: str, value: Any) -> None:
        value = _json_value(value)
        self._change_trial(
            trial_id, lambda row: {column: json.dumps({**_loads(row[column]), key: value})}, answer=False
        )

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, "user_attrs", key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_attr(trial_id, "system_attrs", key, value)

    def finish_trial(
        self,
        trial_id: int,
        state: TrialState,
        value: float | None = None,
        failure_reason: str | None = None,
    ) -> TrialRecord:
        state = TrialState(state)
        if value is not None and (isinstance(value, bool) or not math.isfinite(float(value))):
            raise ConfigError(f"a trial's value must be a finite number or None, but got {value!r}")

        study_id = self._study_of(trial_id)
        values = {
            "state": state.value,
            "value": None if value is None else float(value),
            "failure_reason": failure_reason,
            "finished_at": now() if state.is_finished() else None,
            "tid": trial_id,
            "sources": _SOURCES[state],
        }

        def tx(conn: Connection) -> TrialRecord:
            values["seq"], _, _ = self._bump(conn, study_id, failed=int(state is TrialState.FAILED))
            row = conn.execute(_FINISH, values).first()
            if row is None:  # not allowed from its state: say why (and roll back)
                current = conn.execute(_SELECT_TRIAL, {"tid": trial_id}).one()
                check_transition(current.number, TrialState(current.state), state)
                raise StorageError(f"trial {current.number} changed while it was being finished")
            return _record(row._mapping)

        return self._db.write(tx)

    def heartbeat(self, trial_ids: Collection[int]) -> None:
        ids = [int(t) for t in trial_ids]
        if not ids:
            return
        stamp = (
            update(trials)
            .where(trials.c.trial_id.in_(ids), trials.c.state == TrialState.RUNNING.value)
            .values(heartbeat_at=now())
        )
        self._db.write(lambda conn: conn.execute(stamp))

    def fail_stale_trials(self, study_id: int, grace_seconds: float) -> list[TrialRecord]:
        limit = now() - grace_seconds
        if self._db.read(lambda c: c.execute(_STALE, {"sid": study_id, "limit": limit}).first()) is None:
            return []

        def tx(conn: Connection) -> list[TrialRecord]:
            # Lock the study before selecting: on PostgreSQL two workers could otherwise both select, and both
            # fail (and retry), the same trial.
            self._bump(conn, study_id, seq=0)
            failed: list[TrialRecord] = []
            for trial_id in conn.execute(_STALE, {"sid": study_id, "limit": limit}).scalars().all():
                seq, _, _ = self._bump(conn, study_id, failed=1)
                values = {
                    "state": TrialState.FAILED.value,
                    "value": None,
                    "failure_reason": WORKER_LOST,
                    "finished_at": now(),
                    "seq": seq,
                }
                conn.execute(_UPDATE_TRIAL, {**values, "tid": trial_id})
                failed.append(_record(conn.execute(_SELECT_TRIAL, {"tid": trial_id}).one()._mapping))
            if not failed:
                raise _Unchanged
            return failed

        try:
            return self._db.write(tx)
        except _Unchanged:
            return []

    def close(self) -> None:
        self._db.dispose()


def upgrade_schema(
    url: str, *, migrations: Mapping[int, Migration] = MIGRATIONS, target: int = SCHEMA_VERSION
) -> tuple[int, int]:
    """Migrate the database at ``url`` to schema version ``target``, one registered step per transaction.

    Returns ``(version before, version after)``; a database already at ``target`` is left alone. ``migrations``
    and ``target`` default to this lmtune's registry and version.
    """
    db = Database(url)
    try:
        if db.sqlite and not db.memory:
            database = db.engine.url.database or ""
            if not Path(database).is_file():
                raise StorageError(f"no database file at {database!r} ({db.shown_url}); nothing to upgrade")
        start = db.read(stored_version)
        if start is None:
            raise StorageError(f"{db.shown_url} holds no lmtune tables; nothing to upgrade")
        if start > target:
            raise SchemaVersionError(
                f"{db.shown_url} has schema version {start}, newer than {target}; upgrade lmtune instead"
            )

        def step(conn: Connection) -> int:
            _lock_schema(conn)
            version = stored_version(conn) or 0
            return version if version >= target else migrate_one_step(conn, version, migrations, db.shown_url)

        version = start
        while version < target:
            version = db.write(step)
        return start, version
    finally:
        db.dispose()
