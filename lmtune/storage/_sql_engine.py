"""The database connection behind the SQL storage: URL checks, SQLite settings, transactions and retries.

SQLite runs in WAL mode (readers never block the writer) with a busy timeout; every write transaction starts with
``BEGIN IMMEDIATE``, so it takes the write lock up front instead of upgrading a read lock, which is what deadlocks
two writers. A transaction that still meets "database is locked" is retried with a growing, jittered pause.

The writers of lmtune processes also queue on a lock file beside the database (``FILE.db-lock``): a blocked
writer wakes the moment the lock is free, where SQLite's busy handler polls with sleeps growing from 1 ms to 100 ms,
which leaves the database idle while writers sleep.

PostgreSQL sessions run with ``synchronous_commit = off`` unless the URL asks otherwise (``?synchronous_commit=on``):
a commit returns before its WAL record reaches the disk. The database stays consistent after any crash; a crash
of the server may lose the commits of its last few hundred milliseconds. That is what SQLite's WAL with
``synchronous=NORMAL`` promises too. Reads run as single autocommit statements, without BEGIN and ROLLBACK.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from lmtune.exceptions import ConfigError, MissingDependencyError, StorageError

try:
    import fcntl
except ImportError:  # Windows: SQLite's own busy wait only
    fcntl = None  # type: ignore[assignment]

__all__ = ["Database", "parse_url", "read_only_requested"]

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0  # how long SQLite itself waits for the write lock before reporting "locked"
RETRY_FOR_S = 120.0  # how long a locked write transaction is retried on top of that
_LOCKED = ("database is locked", "database is busy", "database table is locked")


def parse_url(url: str) -> URL:
    """Parse a storage URL, pick psycopg 3 for bare PostgreSQL URLs and check a SQLite file's folder."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"storage URL {url!r} cannot be parsed; use sqlite:///FILE.db or postgresql+psycopg://USER@HOST/DB"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"storage URL {url!r}: lmtune keeps studies in SQLite or PostgreSQL, not {backend}; "
            f"use sqlite:///FILE.db or postgresql+psycopg://USER@HOST/DB"
        )
    if backend in ("postgresql", "postgres") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and not is_memory(parsed):
        _check_sqlite_path(str(parsed.database), url)
    return parsed


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _check_sqlite_path(database: str, url: str) -> None:
    path = Path(database).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"storage {url!r} points to the folder {database!r}, not a file; "
            f"name a database file inside it, e.g. sqlite:///{path / 'lmtune.db'}"
        )
    if not path.parent.is_dir():
        raise ConfigError(
            f"storage {url!r}: the folder {str(path.parent)!r} of the SQLite file does not exist; "
            f"create it first (mkdir -p {path.parent}) or choose a path in an existing folder"
        )


SYNCHRONOUS_COMMIT = ("off", "local", "remote_write", "on", "remote_apply")
DEFAULT_SYNCHRONOUS_COMMIT = "off"


def _postgres_engine(url: URL) -> Engine:
    """A PostgreSQL engine whose sessions use the URL's ``synchronous_commit`` (default off, see module doc)."""
    setting = url.query.get("synchronous_commit", DEFAULT_SYNCHRONOUS_COMMIT)
    if setting not in SYNCHRONOUS_COMMIT:
        raise ConfigError(
            f"storage URL query synchronous_commit={setting!r} is not one of {', '.join(SYNCHRONOUS_COMMIT)}; "
            f"use ?synchronous_commit=on to make every commit wait for the disk"
        )
    engine = create_engine(url.difference_update_query(["synchronous_commit"]), pool_recycle=3600)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit = {setting}")
        dbapi_connection.commit()

    return engine


MIN_SQLITE = (3, 35, 0)  # UPDATE ... RETURNING


def read_only_requested(url: URL) -> bool:
    """Whether a SQLite URL asks to be opened read-only (``?mode=ro``): lmtune then reads it and never writes (nor
    switches its journal mode). SQLite's own read-only mode is not used: it cannot open a WAL database whose
    side files a clean close removed."""
    return url.get_backend_name() == "sqlite" and url.query.get("mode") == "ro"


def _sqlite_engine(url: URL, read_only: bool = False) -> Engine:
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        raise StorageError(
            f"the SQLite storage needs SQLite {'.'.join(map(str, MIN_SQLITE))} or newer, but this Python has "
            f"{sqlite3.sqlite_version}; use a Python built with a newer SQLite, or a postgresql+psycopg:// URL"
        )
    memory = is_memory(url)
    mode = url.query.get("mode")
    if mode not in (None, "ro", "rw", "rwc"):
        raise ConfigError(
            f"storage URL query mode={mode!r} is not one of ro, rw, rwc; use ?mode=ro to only read"
        )
    read_only = (read_only or mode == "ro") and not memory
    url = url.difference_update_query(["mode"])
    engine = create_engine(
        url,
        connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False},
        **({"poolclass": StaticPool} if memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # No implicit deferred BEGIN from the driver: reads run as single autocommit statements, and writes
        # begin explicitly (see Database.write). No connection events either: any of them slows every statement.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory and not read_only:  # switching the journal mode writes to the file
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL: a crash of the process or of the OS never corrupts the file; a power
            # cut may lose the last commits, not the database.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


class _WriterQueue:
    """An exclusive ``flock`` on a file beside the database, held around each write transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        # After a fork the descriptor is shared with the parent: the child closes its copy and opens its own.
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _writer_queue(url: URL) -> _WriterQueue | None:
    if fcntl is None or is_memory(url) or url.get_backend_name() != "sqlite":
        return None
    path = Path(str(url.database)).expanduser().absolute()
    return _WriterQueue(path.with_name(path.name + "-lock"))


class Database:
    """One engine plus the rules for using it: locks, write transactions and retries."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.url = url
        parsed = parse_url(url)
        self.shown_url = parsed.render_as_string(hide_password=True)
        self.sqlite = parsed.get_backend_name() == "sqlite"
        self.memory = is_memory(parsed)
        self.read_only = read_only or read_only_requested(parsed)
        try:
            self.engine = _sqlite_engine(parsed, self.read_only) if self.sqlite else _postgres_engine(parsed)
        except ImportError as exc:
            raise MissingDependencyError(
                f"storage {self.shown_url!r} needs the database driver {exc.name!r}: pip install 'lmtune[postgres]'"
            ) from None
        except ArgumentError as exc:
            raise ConfigError(f"storage {self.shown_url!r} is not a usable database URL: {exc}") from None
        # A SQLite file has one writer at a time anyway: queueing this process's writers on a lock spares them
        # SQLite's polling busy wait. An in-memory database is one shared connection, so reads take it too.
        self._write_lock = threading.Lock() if self.sqlite else None
        self._read_lock = self._write_lock if self.memory else None
        # PostgreSQL: reads and single-statement writes need no transaction around them (one round trip each).
        self._autocommit = (
            self.engine if self.sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._queue = _writer_queue(parsed)
        self._pid = os.getpid()

    def _fresh_after_fork(self) -> None:
        if os.getpid() != self._pid:  # connections must not cross a fork; the child opens its own
            self.engine.dispose(close=False)
            self._write_lock = threading.Lock() if self.sqlite else None
            self._read_lock = self._write_lock if self.memory else None
            if self._queue is not None:
                self._queue.close()
            self._pid = os.getpid()

    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a connection outside any write transaction."""
        self._fresh_after_fork()
        try:
            with _maybe(self._read_lock), self._autocommit.connect() as conn:
                return fn(conn)
        except DBAPIError as exc:
            raise StorageError(f"storage {self.shown_url}: {exc.orig}") from exc

    def statement(self, fn: Callable[[Connection], T]) -> T:
        """PostgreSQL only: run ``fn``, which executes one statement, as a transaction of its own (autocommit)."""
        return self.read(fn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction, committed on return and rolled back when it raises.

        SQLite "database is locked" errors are retried with backoff, so ``fn`` must only touch the database.
        """
        if self.read_only:
            raise StorageError(
                f"storage {self.shown_url} was opened read-only (to inspect it, or ?mode=ro); nothing can be "
                f"written through it"
            )
        self._fresh_after_fork()
        deadline = None
        pause = 0.01
        while True:
            try:
                with _maybe(self._write_lock), _maybe(self._queue), self.engine.connect() as conn:
                    if self.sqlite:  # take the write lock before reading: upgrading a read lock deadlocks
                        conn.exec_driver_sql("BEGIN IMMEDIATE")
                    result = fn(conn)
                    conn.commit()  # leaving the block without it rolls back
                    return result
            except DBAPIError as exc:
                if not (self.sqlite and any(m in str(exc.orig) for m in _LOCKED)):
                    raise StorageError(f"storage {self.shown_url}: {exc.orig}") from exc
                deadline = deadline or time.monotonic() + RETRY_FOR_S
                if time.monotonic() > deadline:
                    raise StorageError(
                        f"storage {self.shown_url} stayed locked for more than {BUSY_TIMEOUT_S + RETRY_FOR_S:.0f} s; "
                        f"another process holds a long write transaction"
                    ) from exc
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 1.0)

    def dispose(self) -> None:
        self.engine.dispose()
        if self._queue is not None:
            self._queue.close()


def _maybe(lock: AbstractContextManager[Any] | None) -> AbstractContextManager[Any]:
    return lock if lock is not None else nullcontext()
