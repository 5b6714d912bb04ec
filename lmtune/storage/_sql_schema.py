"""Tables of the SQL storage, the stored schema version, and the registry of migrations between versions.

Version 1 is the first layout. A later change to the tables bumps :data:`lmtune.storage.base.SCHEMA_VERSION` and
registers a function in :data:`MIGRATIONS` that moves a database from the previous version to the new one;
:func:`upgrade_schema` (the ``lmtune db upgrade URL`` command) applies them one step at a time, each in its own
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
    text,
    update,
)

from lmtune.exceptions import SchemaVersionError, StorageError
from lmtune.storage._sql_engine import Database
from lmtune.storage.base import SCHEMA_VERSION

__all__ = ["MIGRATIONS", "meta", "metadata", "studies", "trials", "upgrade_schema"]

VERSION_KEY = "schema_version"
_SCHEMA_LOCK_KEY = 0x6C6D74756E65  # PostgreSQL advisory lock taken while creating or migrating the tables

metadata = MetaData()

meta = Table(
    "lmtune_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# ``seq`` is the study's change counter; ``n_trials`` the number the next trial gets; ``n_failed`` counts its
# FAILED trials (which hold no slot towards a trial target). Every trial write updates this row first, which also
# serialises the writers of one study.
studies = Table(
    "lmtune_studies",
    metadata,
    Column("study_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(512), nullable=False, unique=True),
    Column("direction", String(16), nullable=False),
    Column("space", Text, nullable=True),
    Column("attrs", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("seq", BigInteger, nullable=False, default=0),
    Column("n_trials", Integer, nullable=False, default=0),
    Column("n_failed", Integer, nullable=False, default=0),
    sqlite_autoincrement=True,
)

# JSON text columns: params, distributions, intermediate ({"step": value}), user_attrs, system_attrs.
trials = Table(
    "lmtune_trials",
    metadata,
    Column("trial_id", Integer, primary_key=True, autoincrement=True),
    Column("study_id", Integer, ForeignKey("lmtune_studies.study_id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("distributions", Text, nullable=False, default="{}"),
    Column("value", Float, nullable=True),
    Column("intermediate", Text, nullable=False, default="{}"),
    Column("user_attrs", Text, nullable=False, default="{}"),
    Column("system_attrs", Text, nullable=False, default="{}"),
    Column("failure_reason", Text, nullable=True),
    Column("worker_id", String(256), nullable=True),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("seq", BigInteger, nullable=False, default=0),
    UniqueConstraint("study_id", "number", name="uq_lmtune_trials_study_number"),
    Index("ix_lmtune_trials_study_seq", "study_id", "seq"),
    # Finds the oldest WAITING trial, or the RUNNING ones, without scanning the study's finished trials.
    Index("ix_lmtune_trials_study_state", "study_id", "state", "number"),
    sqlite_autoincrement=True,
)

Migration = Callable[[Connection], None]

#: ``MIGRATIONS[v]`` moves a database from version ``v`` to ``v + 1``. Version 1 is the first layout.
MIGRATIONS: dict[int, Migration] = {}


def stored_version(conn: Connection) -> int | None:
    """The schema version written in the database, or None when it holds no lmtune tables."""
    names = set(inspect(conn).get_table_names())
    if meta.name not in names:
        if names & {studies.name, trials.name}:
            raise SchemaVersionError(
                f"the database holds lmtune tables but no schema version (table {meta.name}): it was damaged "
                f"or written by something else; use another database"
            )
        return None
    value = conn.execute(select(meta.c.value).where(meta.c.key == VERSION_KEY)).scalar_one_or_none()
    if value is None or not value.isdigit():
        raise SchemaVersionError(f"the {meta.name} table holds no valid {VERSION_KEY} (found {value!r})")
    return int(value)


def create_schema(conn: Connection) -> None:
    """Create every table of the current version and record the version (in the caller's transaction)."""
    metadata.create_all(conn)
    conn.execute(meta.insert().values(key=VERSION_KEY, value=str(SCHEMA_VERSION)))


def check_version(version: int, url: str) -> None:
    """Refuse a database written by another schema version, saying which way to go."""
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database {url} has schema version {version}, newer than the version {SCHEMA_VERSION} this "
            f"lmtune writes; upgrade lmtune (pip install -U lmtune) to open it"
        )
    if version < SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the database {url} has schema version {version}, older than the version {SCHEMA_VERSION} this "
            f"lmtune writes; run `lmtune db upgrade {url}` to migrate it (back it up first)"
        )


def migrate_one_step(conn: Connection, version: int, migrations: Mapping[int, Migration], url: str) -> int:
    """Apply ``migrations[version]`` and record ``version + 1``; return the new version."""
    if version not in migrations:
        raise SchemaVersionError(
            f"no migration from schema version {version} of {url} is known to this lmtune; upgrade lmtune"
        )
    migrations[version](conn)
    conn.execute(update(meta).where(meta.c.key == VERSION_KEY).values(value=str(version + 1)))
    return version + 1


def lock_schema(conn: Connection) -> None:
    """On PostgreSQL, make concurrent creations and migrations of the tables take turns (until commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})


def open_or_create(conn: Connection) -> int:
    """The stored schema version; a database without lmtune tables gets them, at the current version."""
    lock_schema(conn)
    version = stored_version(conn)
    if version is None:
        create_schema(conn)
        return SCHEMA_VERSION
    return version


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
            lock_schema(conn)
            version = stored_version(conn) or 0
            return version if version >= target else migrate_one_step(conn, version, migrations, db.shown_url)

        version = start
        while version < target:
            version = db.write(step)
        return start, version
    finally:
        db.dispose()
