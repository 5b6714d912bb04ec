"""The storage conformance suite against every backend: in memory, SQLite (a file and :memory:) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from lmtune.storage import InMemoryStorage, Storage
from lmtune.storage._sql_engine import parse_url
from lmtune.storage._sql_schema import metadata
from lmtune.storage.sql import SQLStorage
from lmtune.testing.storage import StorageConformance


class TestInMemoryStorage(StorageConformance):
    def make_storage(self) -> Storage:
        return InMemoryStorage()


class TestSQLiteMemoryStorage(StorageConformance):
    def make_storage(self) -> Storage:
        return SQLStorage("sqlite:///:memory:")


class TestSQLiteStorage(StorageConformance):
    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path: Path) -> None:
        self.url = f"sqlite:///{tmp_path / 'lmtune.db'}"

    def make_storage(self) -> Storage:
        return SQLStorage(self.url)

    def storage_url(self) -> str | None:
        return self.url


@pytest.mark.postgres
class TestPostgreSQLStorage(StorageConformance):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_storage(self) -> Storage:
        engine = create_engine(parse_url(self.url))
        metadata.drop_all(engine)  # every check starts from an empty database
        engine.dispose()
        return SQLStorage(self.url)

    def storage_url(self) -> str | None:
        return self.url
