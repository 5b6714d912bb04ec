"""SQL storage through SQLAlchemy 2 Core: a SQLite file by default, PostgreSQL for studies spread over machines.

One row per study and one per trial; parameters, distributions, intermediate values and attributes are JSON text.
Every trial write first bumps the study row's change counter ``seq`` and stamps the trial with it. That row update
also locks the study, so the writers of one study take turns and ``seq`` order is commit order: a reader that has
seen ``seq`` N has seen every change up to N, which is what ``get_trials(since_seq=N)`` relies on.

On PostgreSQL, where every statement is a network round trip, the frequent trial writes (create, parameters,
reports, attributes, finishing) are single statements that bump the study and change the trial together, each a
transaction of its own. Writes that depend on the trial's current row are compare-and-set on the trial's ``seq``
(which every write changes), starting from the row this process last wrote or read; when another process changed
the trial in between, the write is redone in a transaction that locks the study first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, cast

from sqlalchemy import Connection, RowMapping, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from lmtune.exceptions import (
    ConfigError,
    DuplicatedStudyError,
    LmtuneError,
    StorageError,
    StudyNotFoundError,
)
from lmtune.space import Distribution
from lmtune.storage._common import (
    WORKER_LOST,
    check_transition,
    check_writable,
    dumps,
    encode_distributions,
    now,
)
from lmtune.storage._sql_engine import Database
from lmtune.storage._sql_rows import (
    BUMP,
    FINISH,
    INSERT_TRIAL,
    OLDEST_WAITING,
    PG_CAS,
    PG_CREATE,
    PG_FINISH,
    SELECT_STUDY,
    SELECT_TRIAL,
    SOURCES,
    STALE,
    TRIALS_QUERIES,
    UPDATE_TRIAL,
    json_value,
    loads,
    record_from_row,
    study_from_row,
)
from lmtune.storage._sql_schema import (
    check_version,
    open_or_create,
    stored_version,
    studies,
    trials,
    upgrade_schema,
)
from lmtune.storage.base import RetryAttrs, Storage, StudyInfo
from lmtune.trial import TrialRecord, TrialState

__all__ = ["SQLStorage", "upgrade_schema"]


_MAX_REMEMBERED = 4096  # rows of unfinished trials kept for compare-and-set writes (PostgreSQL)


class _Unchanged(Exception):
    """Raised inside a write transaction to roll it back: the call answers None and changes nothing."""


class SQLStorage(Storage):
    """Storage in a SQL database (``sqlite:///FILE.db``, ``sqlite:///:memory:``, ``postgresql+psycopg://...``).

    Safe for any number of threads and processes. Opening a database without lmtune tables creates them, unless
    ``read_only`` (or a SQLite URL's ``?mode=ro``): then it is opened only to read, and a database without them is
    a :class:`~lmtune.exceptions.StorageError`; a database written by another schema version raises
    :class:`~lmtune.exceptions.SchemaVersionError`.
    """

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.url = url
        self._db = Database(url, read_only)
        self._trial_study: dict[int, int] = {}  # trial id -> study id, which never changes
        # PostgreSQL: trial id -> the row as this process last wrote or read it, for compare-and-set writes.
        self._rows: dict[int, dict[str, Any]] = {}
        version = self._db.read(stored_version)
        if version is None and self._db.read_only:  # reading never creates tables in someone else's database
            raise StorageError(
                f"{self._db.shown_url} is not an lmtune database (it has no lmtune tables); give the storage "
                f"URL a study ran in"
            )
        if version is None:
            version = self._db.write(open_or_create)
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
        row = self._db.read(lambda c: c.execute(SELECT_STUDY.where(studies.c.name == name)).first())
        if row is None:
            raise StudyNotFoundError(f"no study named {name!r} in {self._db.shown_url}")
        return study_from_row(row._mapping)

    def list_studies(self) -> list[StudyInfo]:
        rows = self._db.read(lambda c: c.execute(SELECT_STUDY.order_by(studies.c.study_id)).all())
        return [study_from_row(row._mapping) for row in rows]

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
        for trial_id in [t for t, s in list(self._trial_study.items()) if s == sid]:
            self._trial_study.pop(trial_id, None)

    def set_study_attr(self, study_id: int, key: str, value: Any) -> None:
        value = json_value(value)

        def tx(conn: Connection) -> None:
            text_value = conn.execute(
                select(studies.c.attrs).where(studies.c.study_id == study_id).with_for_update()
            ).scalar_one_or_none()
            if text_value is None:
                raise StudyNotFoundError(f"no study with id {study_id} in {self._db.shown_url}")
            attrs = {**loads(text_value), key: value}
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
        row = conn.execute(BUMP, args).first()
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
        if not self._db.sqlite:
            record = self._compare_and_set(trial_id, study_id, change)
            if record is not None:
                return record if answer else None

        def tx(conn: Connection) -> TrialRecord | None:
            seq, _, _ = self._bump(conn, study_id)
            row = conn.execute(SELECT_TRIAL, {"tid": trial_id}).one()._mapping
            values = change(row)
            if values is None:
                raise _Unchanged
            values["seq"] = seq
            conn.execute(UPDATE_TRIAL, {**values, "tid": trial_id})
            return record_from_row({**row, **values}) if answer else None

        self._rows.pop(trial_id, None)
        try:
            return self._db.write(tx)
        except _Unchanged:
            return None

    def _compare_and_set(
        self, trial_id: int, study_id: int, change: Callable[[RowMapping], dict[str, Any] | None]
    ) -> TrialRecord | None:
        """PostgreSQL: apply ``change`` to the row last seen in one statement, if the trial is still as seen.

        None when it did not apply (the trial changed since, or ``change`` declined or raised on a remembered
        row): the caller then redoes the write in a locking transaction, which is authoritative.
        """
        row = self._rows.get(trial_id)
        remembered = row is not None
        if row is None:
            found = self._db.read(lambda c: c.execute(SELECT_TRIAL, {"tid": trial_id}).first())
            if found is None:
                return None
            row = dict(found._mapping)
        try:
            values = change(cast(RowMapping, row))
        except LmtuneError:
            if remembered:
                return None
            raise
        if values is None:
            return None
        args = {**values, "sid": study_id, "tid": trial_id, "old_seq": row["seq"]}
        new = self._db.statement(lambda c: c.execute(PG_CAS, args).first())
        if new is None:
            self._rows.pop(trial_id, None)
            return None
        return self._remember(dict(new._mapping))

    def _remember(self, row: dict[str, Any]) -> TrialRecord:
        """Keep an unfinished trial's row for later compare-and-set writes (PostgreSQL); return it as a record."""
        if not self._db.sqlite and row["state"] in (TrialState.RUNNING.value, TrialState.WAITING.value):
            if len(self._rows) >= _MAX_REMEMBERED:
                self._rows.clear()
            self._rows[row["trial_id"]] = row
        return record_from_row(row)

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
        values = _new_trial(study_id, state, params, distributions, system_attrs, worker_id)
        if not self._db.sqlite:
            return self._create_in_one_statement(study_id, values, max_trials)
        return self._write_or_none(lambda conn: self._insert(conn, study_id, values, max_trials), study_id)

    def _insert(
        self, conn: Connection, study_id: int, values: dict[str, Any], max_trials: int | None
    ) -> TrialRecord:
        """Within a write transaction: number and insert a new trial (_Unchanged when the study is full)."""
        seq, n_trials, n_failed = self._bump(conn, study_id, new=1)
        number = n_trials - 1
        if max_trials is not None and number - n_failed >= max_trials:  # FAILED trials hold no slot
            raise _Unchanged
        row = {**values, "number": number, "seq": seq}
        trial_id = cast(Any, conn.execute(INSERT_TRIAL, row).inserted_primary_key)[0]
        return record_from_row({**row, "trial_id": int(trial_id)})

    def _create_in_one_statement(
        self, study_id: int, values: dict[str, Any], max_trials: int | None
    ) -> TrialRecord | None:
        args = {**{f"new_{k}": v for k, v in values.items()}, "sid": study_id, "max_trials": max_trials}
        found = self._db.statement(lambda c: c.execute(PG_CREATE, args).first())
        if found is None:
            exists = self._db.read(
                lambda c: c.execute(select(studies.c.study_id).where(studies.c.study_id == study_id)).first()
            )
            if exists is None:
                raise StudyNotFoundError(f"no study with id {study_id} in {self._db.shown_url}")
            return None  # the study holds max_trials trials
        trial_id, number, seq = int(found[0]), int(found[1]), int(found[2])
        self._trial_study[trial_id] = study_id
        row = {k: v for k, v in values.items() if k != "study_id"}
        return self._remember({**row, "trial_id": trial_id, "number": number, "seq": seq})

    def claim_trial(self, study_id: int, worker_id: str | None = None) -> TrialRecord | None:
        # A plain read first: most calls find nothing waiting and need no write lock.
        if self._db.read(lambda c: c.execute(OLDEST_WAITING, {"sid": study_id}).first()) is None:
            return None

        def tx(conn: Connection) -> TrialRecord:
            seq, _, _ = self._bump(conn, study_id)
            trial_id = conn.execute(OLDEST_WAITING, {"sid": study_id}).scalar()
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
            conn.execute(UPDATE_TRIAL, {**values, "tid": trial_id})
            return record_from_row(conn.execute(SELECT_TRIAL, {"tid": trial_id}).one()._mapping)

        return self._write_or_none(tx, study_id)

    def resume_trial(self, trial_id: int, worker_id: str | None = None) -> TrialRecord | None:
        def change(row: RowMapping) -> dict[str, Any] | None:
            if row["state"] != TrialState.PAUSED.value:
                return None
            return {"state": TrialState.RUNNING.value, "worker_id": worker_id, "heartbeat_at": now()}

        return self._change_trial(trial_id, change)

    def get_trial(self, trial_id: int) -> TrialRecord:
        row = self._db.read(lambda c: c.execute(SELECT_TRIAL, {"tid": trial_id}).first())
        if row is None:
            raise KeyError(f"no trial with id {trial_id} in {self._db.shown_url}")
        return self._remember(dict(row._mapping))

    def get_trials(
        self, study_id: int, states: Collection[TrialState] | None = None, since_seq: int | None = None
    ) -> list[TrialRecord]:
        query = TRIALS_QUERIES[states is not None, since_seq is not None]
        args: dict[str, Any] = {"sid": study_id, "since": since_seq}
        if states is not None:
            args["states"] = [TrialState(s).value for s in states]
        rows = self._db.read(lambda c: c.execute(query, args).all())
        return [record_from_row(row._mapping) for row in rows]

    def set_trial_param(self, trial_id: int, name: str, value: Any, distribution: Distribution) -> None:
        self.set_trial_params(trial_id, {name: value}, {name: distribution})

    def set_trial_params(
        self, trial_id: int, params: Mapping[str, Any], distributions: Mapping[str, Distribution]
    ) -> None:
        new_params = json_value(dict(params))
        new_distributions = encode_distributions(distributions)

        def change(row: RowMapping) -> dict[str, Any]:
            check_writable(row["number"], TrialState(row["state"]))
            return {
                "params": json.dumps({**loads(row["params"]), **new_params}),
                "distributions": json.dumps({**loads(row["distributions"]), **new_distributions}),
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
            return {"intermediate": json.dumps({**loads(row["intermediate"]), str(step): value})}

        return cast(TrialRecord, self._change_trial(trial_id, change))  # ``change`` never answers None

    def _set_attr(self, trial_id: int, column: str, key: str, value: Any) -> None:
        value = json_value(value)
        self._change_trial(
            trial_id, lambda row: {column: json.dumps({**loads(row[column]), key: value})}, answer=False
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
        values = _finish_values(trial_id, state, value, failure_reason)
        self._rows.pop(trial_id, None)
        if not self._db.sqlite and state is not TrialState.FAILED:
            # One statement; a transition it did not apply is redone below, which raises the right error.
            args = {**values, "sid": study_id}
            row = self._db.statement(lambda c: c.execute(PG_FINISH, args).first())
            if row is not None:
                return record_from_row(row._mapping)

        return self._db.write(lambda conn: self._finish(conn, study_id, values))

    def _finish(self, conn: Connection, study_id: int, values: dict[str, Any]) -> TrialRecord:
        """Within a write transaction: apply ``finish_trial``'s ``values``, or raise why it does not apply."""
        state = TrialState(values["state"])
        values["seq"], _, _ = self._bump(conn, study_id, failed=int(state is TrialState.FAILED))
        row = conn.execute(FINISH, values).first()
        if row is None:  # not allowed from its state: say why (and roll back)
            current = conn.execute(SELECT_TRIAL, {"tid": values["tid"]}).one()
            check_transition(current.number, TrialState(current.state), state)
            raise StorageError(f"trial {current.number} changed while it was being finished")
        return record_from_row(row._mapping)

    def fail_trial(
        self, study_id: int, trial_id: int, failure_reason: str, retry: RetryAttrs | None = None
    ) -> tuple[TrialRecord, TrialRecord | None]:
        self._rows.pop(trial_id, None)
        values = _finish_values(trial_id, TrialState.FAILED, None, failure_reason)

        def tx(conn: Connection) -> tuple[TrialRecord, TrialRecord | None]:
            failed = self._finish(conn, study_id, values)
            attrs = retry(failed) if retry is not None else None
            if attrs is None:
                return failed, None
            copy = _new_trial(study_id, TrialState.WAITING, failed.params, failed.distributions, attrs, None)
            return failed, self._insert(conn, study_id, copy, None)

        failed, copy = self._db.write(tx)
        if copy is not None:
            self._trial_study[copy.trial_id] = study_id
        return failed, copy

    def heartbeat(self, trial_ids: Collection[int]) -> None:
        ids = [int(t) for t in trial_ids]
        if not ids:
            return
        stamp = (
            update(trials)
            .where(trials.c.trial_id.in_(ids), trials.c.state == TrialState.RUNNING.value)
            .values(heartbeat_at=now())
        )
        if self._db.sqlite:
            self._db.write(lambda conn: conn.execute(stamp))
        else:
            self._db.statement(lambda conn: conn.execute(stamp))

    def fail_stale_trials(self, study_id: int, grace_seconds: float) -> list[TrialRecord]:
        if self._db.read_only:  # inspecting a study leaves its lost trials to the workers
            return []
        limit = now() - grace_seconds
        if self._db.read(lambda c: c.execute(STALE, {"sid": study_id, "limit": limit}).first()) is None:
            return []

        def tx(conn: Connection) -> list[TrialRecord]:
            # Lock the study before selecting: on PostgreSQL two workers could otherwise both select, and both
            # fail (and retry), the same trial.
            self._bump(conn, study_id, seq=0)
            failed: list[TrialRecord] = []
            for trial_id in conn.execute(STALE, {"sid": study_id, "limit": limit}).scalars().all():
                seq, _, _ = self._bump(conn, study_id, failed=1)
                values = {
                    "state": TrialState.FAILED.value,
                    "value": None,
                    "failure_reason": WORKER_LOST,
                    "finished_at": now(),
                    "seq": seq,
                }
                conn.execute(UPDATE_TRIAL, {**values, "tid": trial_id})
                failed.append(record_from_row(conn.execute(SELECT_TRIAL, {"tid": trial_id}).one()._mapping))
            if not failed:
                raise _Unchanged
            return failed

        try:
            return self._db.write(tx)
        except _Unchanged:
            return []

    def close(self) -> None:
        self._db.dispose()


def _new_trial(
    study_id: int,
    state: TrialState,
    params: Mapping[str, Any] | None,
    distributions: Mapping[str, Distribution] | None,
    system_attrs: Mapping[str, Any] | None,
    worker_id: str | None,
) -> dict[str, Any]:
    """The column values of a new trial, all but its number and seq."""
    t = now() if state is TrialState.RUNNING else None
    return {
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


def _finish_values(
    trial_id: int, state: TrialState, value: float | None, failure_reason: str | None
) -> dict[str, Any]:
    """The bound values of finish_trial's update."""
    return {
        "state": state.value,
        "value": None if value is None else float(value),
        "failure_reason": failure_reason,
        "finished_at": now() if state.is_finished() else None,
        "tid": trial_id,
        "sources": SOURCES[state],
    }
