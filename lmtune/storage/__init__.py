"""Storage backends: in-memory and SQL (SQLite by default, PostgreSQL for many machines)."""

from __future__ import annotations

from pathlib import Path

from lmtune.exceptions import ConfigError
from lmtune.storage.base import SCHEMA_VERSION, Storage, StudyInfo
from lmtune.storage.memory import InMemoryStorage

__all__ = ["SCHEMA_VERSION", "InMemoryStorage", "Storage", "StudyInfo", "check_storage_url", "get_storage"]

SQL_SCHEMES = ("sqlite", "postgresql", "postgres")


def get_storage(storage: str | Storage | None, read_only: bool = False) -> Storage:
    """A storage from a URL (``sqlite:///path.db``, ``postgresql+psycopg://...``, ``memory://``), an instance,
    or None for a new in-memory storage. ``read_only``: open an existing lmtune database only to read it (never
    create its tables)."""
    if storage is None:
        return InMemoryStorage()
    if isinstance(storage, Storage):
        return storage
    check_storage_url(storage)
    if storage.startswith("memory:"):
        return InMemoryStorage()
    from lmtune.storage.sql import SQLStorage

    return SQLStorage(storage, read_only=read_only)


def check_storage_url(url: str) -> None:
    """Validate a storage URL without opening it: a known scheme, and for SQLite an existing folder (folders
    are never created) and a path that is not itself a folder."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"storage must be a URL such as sqlite:///lmtune.db, but got {url!r}")
    if url.startswith("memory:"):
        return
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in SQL_SCHEMES or "://" not in url:
        raise ConfigError(
            f"storage {url!r} has an unknown scheme {scheme!r}; use sqlite:///FILE.db, "
            f"postgresql+psycopg://USER@HOST/DB or memory://"
        )
    if scheme == "sqlite" and url not in ("sqlite://", "sqlite:///:memory:"):
        path = Path(url.split(":///", 1)[-1])
        if path.is_dir():
            raise ConfigError(f"storage {url!r}: {str(path)!r} is a folder; name a database file inside it")
        if not path.parent.is_dir():
            raise ConfigError(
                f"storage {url!r}: folder {str(path.parent)!r} does not exist; create it or choose another path"
            )
