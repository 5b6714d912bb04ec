"""What the SQL storage adds to the protocol: URL checks, SQLite settings, JSON records, schema versions."""

from __future__ import annotations

import json
import pickle
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, event, inspect, text

from lmtune.exceptions import ConfigError, SchemaVersionError, StorageError, TrialStateError
from lmtune.space import CategoricalDistribution, FloatDistribution
from lmtune.storage import SCHEMA_VERSION, _sql_engine, get_storage
from lmtune.storage._sql_engine import parse_url
from lmtune.storage.sql import SQLStorage, upgrade_schema
from lmtune.trial import TrialState


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lmtune.db'}"


def _set_version(url: str, version: str) -> None:
    with sqlite3.connect(url[len("sqlite:///") :]) as conn:
        conn.execute("UPDATE lmtune_meta SET value = ? WHERE key = 'schema_version'", (version,))


def test_missing_folder_is_a_config_error_and_nothing_is_created(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}"
    with pytest.raises(ConfigError, match=r"does not exist.*mkdir -p") as info:
        SQLStorage(url)
    assert str(tmp_path / "no" / "such") in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_folder_as_database_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="folder") as info:
        SQLStorage(f"sqlite:///{tmp_path}")
    assert str(tmp_path / "lmtune.db") in str(info.value)


def test_sqlite_urls_route_here_and_postgres_uses_psycopg(db: str) -> None:
    storage = get_storage(db)
    assert isinstance(storage, SQLStorage) and storage.url == db
    storage.close()
    assert parse_url("postgresql://u:secret@h/d").drivername == "postgresql+psycopg"
    assert parse_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    with pytest.raises(ConfigError, match="cannot be parsed"):
        SQLStorage("sqlite//nothing")


def test_file_uses_wal_and_records_are_json_text(db: str) -> None:
    storage = SQLStorage(db)
    sid = storage.create_study("s", "minimize", None, {"provenance": {"seed": 1}}).study_id
    record = storage.create_trial(
        sid,
        params={"lr": 0.1, "opt": "sgd"},
        distributions={"lr": FloatDistribution(0.0, 1.0), "opt": CategoricalDistribution(["sgd", "adam"])},
    )
    assert record is not None
    storage.report(record.trial_id, 3, 0.5)
    storage.set_trial_user_attr(record.trial_id, "k", [1, {"a": None}])
    storage.close()
    with sqlite3.connect(db[len("sqlite:///") :]) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        row = conn.execute(
            "SELECT params, distributions, intermediate, user_attrs, system_attrs FROM lmtune_trials"
        ).fetchone()
        attrs = conn.execute("SELECT attrs FROM lmtune_studies").fetchone()[0]
    params, dists, intermediate, user_attrs, system_attrs = (json.loads(col) for col in row)
    assert params == {"lr": 0.1, "opt": "sgd"}
    assert dists["opt"] == {"type": "categorical", "choices": ["sgd", "adam"]}
    assert intermediate == {"3": 0.5} and user_attrs == {"k": [1, {"a": None}]} and system_attrs == {}
    assert json.loads(attrs) == {"provenance": {"seed": 1}}


def test_in_memory_database_is_shared_by_threads_and_stays_in_its_process() -> None:
    storage = SQLStorage("sqlite:///:memory:")
    sid = storage.create_study("s", "minimize").study_id
    threads = [threading.Thread(target=lambda: storage.create_trial(sid)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.number for r in storage.get_trials(sid)] == [0, 1, 2]
    with pytest.raises(StorageError, match="one process"):
        pickle.dumps(storage)


def test_a_pickled_storage_reopens_its_url(db: str) -> None:
    storage = SQLStorage(db)
    storage.create_study("s", "minimize")
    copy = pickle.loads(pickle.dumps(storage))
    assert isinstance(copy, SQLStorage) and copy.url == db
    assert copy.get_study("s").name == "s"
    copy.close()
    storage.close()


def test_a_file_that_is_no_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database\n" * 100)
    with pytest.raises(StorageError, match="not a database"):
        SQLStorage(f"sqlite:///{path}")
    assert path.read_text().startswith("these are notes")


def test_locked_database_is_retried_until_free(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another program holding the write lock longer than the busy timeout delays a write; it does not fail."""
    monkeypatch.setattr(_sql_engine, "BUSY_TIMEOUT_S", 0.05)
    storage = SQLStorage(db)
    sid = storage.create_study("s", "minimize").study_id
    holder = sqlite3.connect(db[len("sqlite:///") :], isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.6, lambda: holder.execute("COMMIT"))
    release.start()
    began = time.monotonic()
    record = storage.create_trial(sid)
    waited = time.monotonic() - began
    release.join()
    holder.close()
    assert record is not None and record.number == 0
    assert waited >= 0.4, f"the write did not wait for the lock ({waited:.2f} s)"
    storage.close()


# Schema versions ---------------------------------------------------------------------------------------------
def test_newer_schema_asks_to_upgrade_lmtune(db: str) -> None:
    SQLStorage(db).close()
    _set_version(db, str(SCHEMA_VERSION + 1))
    with pytest.raises(SchemaVersionError, match=r"newer .* upgrade lmtune"):
        SQLStorage(db)


def test_older_schema_asks_for_db_upgrade(db: str) -> None:
    SQLStorage(db).close()
    _set_version(db, str(SCHEMA_VERSION - 1))
    with pytest.raises(SchemaVersionError, match=r"older .* `lmtune db upgrade sqlite:///"):
        SQLStorage(db)


def test_garbled_version_or_missing_meta_table_is_refused(db: str) -> None:
    SQLStorage(db).close()
    _set_version(db, "one")
    with pytest.raises(SchemaVersionError, match="no valid schema_version"):
        SQLStorage(db)
    with sqlite3.connect(db[len("sqlite:///") :]) as conn:
        conn.execute("DROP TABLE lmtune_meta")
    with pytest.raises(SchemaVersionError, match="no schema version"):
        SQLStorage(db)


def test_upgrade_of_a_current_database_changes_nothing(db: str) -> None:
    storage = SQLStorage(db)
    storage.create_study("s", "minimize")
    storage.close()
    assert upgrade_schema(db) == (SCHEMA_VERSION, SCHEMA_VERSION)
    assert SQLStorage(db).get_study("s").name == "s"


def test_upgrade_of_nothing_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="nothing to upgrade"):
        upgrade_schema(f"sqlite:///{tmp_path / 'absent.db'}")
    assert list(tmp_path.iterdir()) == []


def _add_budget_column(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE lmtune_trials ADD COLUMN budget INTEGER"))


def test_upgrade_applies_registered_steps_in_order(db: str) -> None:
    """The step engine with a real migration: version 1 -> 2 adds a column, then no step 2 -> 3 is known."""
    storage = SQLStorage(db)
    sid = storage.create_study("s", "minimize").study_id
    storage.create_trial(sid)
    storage.close()
    with pytest.raises(SchemaVersionError, match="no migration from schema version 2"):
        upgrade_schema(db, migrations={SCHEMA_VERSION: _add_budget_column}, target=SCHEMA_VERSION + 2)
    engine = _sql_engine.Database(db).engine  # plain SQL: this lmtune refuses a version-2 database
    with engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("lmtune_trials")}
        version = conn.execute(text("SELECT value FROM lmtune_meta")).scalar()
        n_trials = conn.execute(text("SELECT count(*) FROM lmtune_trials")).scalar()
    engine.dispose()
    assert "budget" in columns and version == str(SCHEMA_VERSION + 1) and n_trials == 1
    with pytest.raises(SchemaVersionError, match="newer"):
        SQLStorage(db)
    with pytest.raises(SchemaVersionError, match="newer than"):
        upgrade_schema(db)


@pytest.mark.postgres
def test_postgres_upgrade_of_a_current_database_is_a_no_op(postgres_url: str) -> None:
    storage = SQLStorage(postgres_url)
    name = f"upgrade-{time.time_ns()}"
    storage.create_study(name, "minimize")
    storage.close()
    assert upgrade_schema(postgres_url) == (SCHEMA_VERSION, SCHEMA_VERSION)
    reopened = SQLStorage(postgres_url)
    assert reopened.get_study(name).n_trials == 0
    reopened.delete_study(name)
    reopened.close()


def test_passwords_stay_out_of_messages() -> None:
    with pytest.raises(StorageError) as info:
        SQLStorage("postgresql+psycopg://user:hunter2@127.0.0.1:1/db?connect_timeout=2")
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def _with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def _synchronous_commit(storage: SQLStorage) -> str:
    return storage._db.read(lambda c: c.execute(text("SHOW synchronous_commit")).scalar_one())


@pytest.mark.postgres
def test_postgres_sessions_commit_asynchronously_unless_the_url_says_otherwise(postgres_url: str) -> None:
    default, durable = (
        SQLStorage(postgres_url),
        SQLStorage(_with_query(postgres_url, "synchronous_commit=on")),
    )
    assert _synchronous_commit(default) == "off"
    assert _synchronous_commit(durable) == "on"
    assert (
        _synchronous_commit(pickle.loads(pickle.dumps(durable))) == "on"
    )  # other processes keep the setting
    default.close(), durable.close()
    with pytest.raises(ConfigError, match=r"synchronous_commit='sometimes'.*synchronous_commit=on"):
        SQLStorage(_with_query(postgres_url, "synchronous_commit=sometimes"))


@pytest.mark.postgres
def test_postgres_writes_from_a_stale_row_lose_nothing(postgres_url: str) -> None:
    """Two processes' storages write the same trial: the one whose remembered row is stale redoes its write."""
    first, second = SQLStorage(postgres_url), SQLStorage(postgres_url)
    name = f"stale-{time.time_ns()}"
    sid = first.create_study(name, "minimize").study_id
    trial = first.create_trial(sid)  # ``first`` remembers the row it wrote
    assert trial is not None
    second.report(trial.trial_id, 0, 0.5)
    second.set_trial_user_attr(trial.trial_id, "by", "second")
    first.set_trial_param(trial.trial_id, "x", 0.25, FloatDistribution(0.0, 1.0))
    first.report(trial.trial_id, 1, 0.25)
    record = second.get_trial(trial.trial_id)
    assert record.intermediate == {0: 0.5, 1: 0.25} and record.params == {"x": 0.25}
    assert record.user_attrs == {"by": "second"}
    second.finish_trial(trial.trial_id, TrialState.COMPLETE, 0.25)
    with pytest.raises(TrialStateError):
        first.report(trial.trial_id, 2, 0.1)  # ``first`` still remembers it RUNNING
    assert first.get_trial(trial.trial_id).intermediate == {0: 0.5, 1: 0.25}
    first.delete_study(name)
    first.close(), second.close()


@pytest.mark.postgres
def test_postgres_trial_takes_single_statements_without_transactions(postgres_url: str) -> None:
    """Round trips per define-by-run trial (profiled with SQLAlchemy's statement events)."""
    import lmtune
    from lmtune.samplers import RandomSampler

    study = lmtune.create_study(
        storage=postgres_url, study_name=f"trips-{time.time_ns()}", sampler=RandomSampler(0)
    )
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, max_failed_trials=None)
    engine = study.storage._db.engine  # type: ignore[attr-defined]
    statements: list[str] = []
    commits: list[object] = []

    def count(_conn: Connection, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    def commit(conn: Connection) -> None:
        commits.append(conn)

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", commit)
    try:
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=10, max_failed_trials=None)
    finally:
        event.remove(engine, "before_cursor_execute", count)
        event.remove(engine, "commit", commit)
    # one history read, then create, parameter and finish: each one autocommit statement
    assert len(statements) == 4 * 10 and commits == []
    assert [r.state for r in study.trials] == [TrialState.COMPLETE] * 12
    study.storage.delete_study(study.study_name)
