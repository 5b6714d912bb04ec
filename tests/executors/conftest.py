"""Helpers for the executor tests: study files, worker processes and a PostgreSQL study name per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SPACE = "space:\n  x: {type: float, low: 0, high: 1}\n"


@pytest.fixture
def worker_env() -> dict[str, str]:
    """The environment of a worker process: this folder importable, so `parallel_objectives:...` resolves."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    def write(
        storage: str, objective: str = "parallel_objectives:noop", extra: str = "", name: str = "par"
    ) -> Path:
        path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(
            f"study: {name}\nstorage: {storage}\nobjective: {objective}\n{SPACE}"
            f"sampler: {{name: random, seed: 3}}\n{extra}"
        )
        return path

    return write


def start_worker(study_file: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lmtune", "worker", str(study_file), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def pg_storage(postgres_url: str) -> str:
    """The PostgreSQL URL; each test uses its own study name, so tests never see each other's trials."""
    return postgres_url
