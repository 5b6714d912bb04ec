"""Fixtures of the NLP tests: the shared data folder and small task sections over real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may be downloaded
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DATA = Path(os.environ.get("LMTUNE_SHARED", Path(__file__).resolve().parents[3] / "shared")) / "data"


@pytest.fixture
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is missing at {DATA}; set LMTUNE_SHARED")
    return DATA
