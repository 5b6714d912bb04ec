"""Storage backends: in-memory and SQL (SQLite by default, PostgreSQL for many machines)."""

from __future__ import annotations

from lmtune.exceptions import ConfigError
from lmtune.storage.base import SCHEMA_VERSION, Storage, StudyInfo
from lmtune.storage.memory import InMemoryStorage

__all__ = ["SCHEMA_VERSION", "InMemoryStorage", "Storage", "StudyInfo", "get_storage"]

SQL_SCHEMES = ("sqlite", "postgresql", "postgres")


def get_storage(storage: str | Storage | None) -> Storage:
    """A storage from a URL (``sqlite:///path.db``, ``postgresql+psycopg://...``, ``memory://``), an instance,
    or None for a new in-memory storage."""
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    if not isinstance(storage, str) or not storage.strip():
        raise ConfigError(f"storage must be a URL such as sqlite:///lmtune.db, but got {storage!r}")
    scheme = storage.split(":", 1)[0].split("+", 1)[0].lower()
    if storage.startswith("memory:"):
        return InMemoryStorage()
    if scheme in SQL_SCHEMES and "://" in storage:
        from lmtune.storage.sql import SQLStorage

        return SQLStorage(storage)
    raise ConfigError(
        f"storage {storage!r} has an unknown scheme {scheme!r}; use sqlite:///FILE.db, "
        f"postgresql+psycopg://USER@HOST/DB or memory://"
    )
