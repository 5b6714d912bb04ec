"""Shared fixtures and the skips for tests that need a service (PostgreSQL, Ray)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LMTUNE_SHARED", REPO_ROOT.parent / "shared"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    postgres_url = os.environ.get("LMTUNE_POSTGRES_URL")
    has_ray = importlib.util.find_spec("ray") is not None
    for item in items:
        if "postgres" in item.keywords and not postgres_url:
            item.add_marker(
                pytest.mark.skip(reason="set LMTUNE_POSTGRES_URL to a PostgreSQL server to run this")
            )
        if "ray" in item.keywords and not has_ray:
            item.add_marker(pytest.mark.skip(reason="ray is not installed: pip install 'lmtune[ray]'"))


@pytest.fixture
def postgres_url() -> str:
    url = os.environ.get("LMTUNE_POSTGRES_URL")
    if not url:
        pytest.skip("set LMTUNE_POSTGRES_URL to a PostgreSQL server to run this")
    return url


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The folder of shared datasets and benchmark recordings beside the repository."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder not found; set LMTUNE_SHARED (looked in {SHARED})")
    return SHARED


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where a test saves what a person should look at (screenshots, captured terminals): ``LMTUNE_ARTIFACTS``
    when set, so a run can keep them; otherwise the test's temporary folder."""
    folder = Path(os.environ["LMTUNE_ARTIFACTS"]) if os.environ.get("LMTUNE_ARTIFACTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder
