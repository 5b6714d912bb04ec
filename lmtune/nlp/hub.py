"""The Hugging Face cache as a user's own script sees it: where it is, whether it may go online, which commit a
model id resolves to, and datasets loaded with ``datasets.load_dataset`` or ``load_from_disk``.

The environment is read when a study is loaded, not when a library is imported, so ``HF_HOME``,
``HF_HUB_CACHE``, ``HF_DATASETS_CACHE`` and ``HF_HUB_OFFLINE`` set by a caller (or a test) take effect;
``HF_TOKEN`` is read by ``huggingface_hub`` itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = [
    "HubModel",
    "dataset_commit",
    "hub_cache_dir",
    "hub_offline",
    "load_disk_dataset",
    "load_hub_dataset",
    "resolve_hub_model",
]

_TRUE = {"1", "true", "yes", "on"}
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set: only the cache may be read."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def _home() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return Path(os.environ.get("HF_HOME") or default).expanduser()


def hub_cache_dir() -> Path:
    """The folder of cached Hub repositories: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``."""
    given = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    return Path(given).expanduser() if given else _home() / "hub"


def _datasets_cache_dir() -> Path:
    given = os.environ.get("HF_DATASETS_CACHE")
    return Path(given).expanduser() if given else _home() / "datasets"


@dataclass(frozen=True)
class HubModel:
    """A model id resolved in the cache: the requested revision, the commit it names and its snapshot folder."""

    name: str
    revision: str | None
    commit: str
    snapshot: Path


def resolve_hub_model(name: str, revision: str | None, field: str = "task.model") -> HubModel:
    """Find ``name`` at ``revision`` (default ``main``) through the Hugging Face cache, downloading its config
    unless offline. Errors name ``field``, the model, the cache folder and the fix."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache, offline = hub_cache_dir(), hub_offline()
    at = f" at revision {revision!r}" if revision else ""
    command = f"hf download {name}" + (f" --revision {revision}" if revision else "")
    try:
        config = hf_hub_download(
            name, "config.json", revision=revision, cache_dir=cache, local_files_only=offline
        )
    except HFValidationError:
        raise ConfigError(
            f"{field}: {name!r} is neither a folder nor a Hugging Face Hub id (ORG/NAME); give the path of a "
            f"folder written by save_pretrained or a Hub id such as bert-base-uncased"
        ) from None
    except GatedRepoError:
        raise ConfigError(
            f"{field}: model {name!r} is gated on the Hugging Face Hub; accept its terms on the model page and "
            f"set HF_TOKEN (or run `hf auth login`)"
        ) from None
    except RevisionNotFoundError:
        raise ConfigError(
            f"{field}: model {name!r} has no revision {revision!r}; give a branch, tag or commit it has"
        ) from None
    except RepositoryNotFoundError:
        raise ConfigError(
            f"{field}: no model {name!r} on the Hugging Face Hub (or it is private: set HF_TOKEN); "
            f"check the spelling"
        ) from None
    except LocalEntryNotFoundError:
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub could not be reached"
        raise ConfigError(
            f"{field}: model {name!r}{at} is not in the Hugging Face cache {str(cache)!r} and {reason}; "
            f"download it once with `{command}` (`huggingface-cli download` in older versions), point HF_HOME or "
            f"HF_HUB_CACHE at the cache that holds it, or unset HF_HUB_OFFLINE"
        ) from None
    except EntryNotFoundError:
        raise ConfigError(
            f"{field}: repository {name!r}{at} has no config.json, so it is not a transformers model"
        ) from None
    snapshot = Path(config).parent
    commit = snapshot.name if _COMMIT.match(snapshot.name) else (revision or "")
    return HubModel(name, revision, commit, snapshot)


def load_hub_dataset(
    name: str,
    config: str | None,
    revision: str | None,
    data_files: Any,
    base_dir: Path,
) -> Any:
    """``datasets.load_dataset`` of a Hub id, a local dataset repository folder (relative to ``base_dir``) or a
    packaged loader (``csv`` with ``data_files``), as a ``DatasetDict``. Errors name the field and the fix."""
    from lmtune._imports import require

    datasets = require("datasets", "nlp")
    local = (base_dir / os.path.expanduser(name)).resolve()
    path = str(local) if local.is_dir() else name
    files = _local_files(data_files, base_dir)
    try:
        loaded = datasets.load_dataset(
            path, config, revision=revision, data_files=files, cache_dir=str(_datasets_cache_dir())
        )
    except ValueError as exc:
        text = str(exc)
        if "BuilderConfig" in text or "config" in text.lower():
            raise ConfigError(f"task.data.config: {_first_line(text)}; set config to one of them") from None
        raise ConfigError(
            f"task.data.hub: dataset {name!r} could not be loaded: {_first_line(text)}"
        ) from None
    except FileNotFoundError as exc:
        raise ConfigError(_dataset_not_found(name, exc)) from None
    except ConnectionError as exc:
        raise ConfigError(_dataset_not_found(name, exc)) from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def dataset_commit(dataset: Any) -> str | None:
    """The commit a loaded ``DatasetDict`` was built from, read from where its Arrow files lie: ``datasets`` keeps a
    Hub dataset under a folder named by the resolved commit (``.../<config>/<version>/<commit>/``), and a folder
    inside a Hub snapshot carries it as well. None for data that names no commit (a local folder, packaged files)."""
    for split in dataset.values():
        for cache in getattr(split, "cache_files", ()):
            for part in reversed(Path(cache.get("filename", "")).parts):
                if _COMMIT.match(part):
                    return part
    return None


def load_disk_dataset(folder: str, base_dir: Path) -> Any:
    """A ``DatasetDict`` (or a ``Dataset``, as its ``train`` split) written by ``save_to_disk``."""
    from lmtune._imports import require

    datasets = require("datasets", "nlp")
    path = (base_dir / os.path.expanduser(folder)).resolve()
    if not path.is_dir():
        raise ConfigError(
            f"task.data.dataset: folder {str(path)!r} not found; give a folder written by save_to_disk "
            f"(relative to the study file)"
        )
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"task.data.dataset: {str(path)!r} is not a folder written by save_to_disk ({_first_line(str(exc))})"
        ) from None
    if not isinstance(loaded, datasets.DatasetDict):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def _local_files(data_files: Any, base_dir: Path) -> Any:
    """``data_files`` with paths made relative to the study file's folder."""

    def local(text: str) -> str:
        path = Path(os.path.expanduser(text))
        return str(path if path.is_absolute() else (base_dir / path).resolve())

    if data_files is None:
        return None
    if isinstance(data_files, str):
        return local(data_files)
    if isinstance(data_files, Mapping):
        return {k: _local_files(v, base_dir) for k, v in data_files.items()}
    return [local(f) for f in data_files]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _dataset_not_found(name: str, exc: BaseException) -> str:
    offline = (
        "HF_HUB_OFFLINE is set and it is not in the cache"
        if hub_offline()
        else "it is neither a local folder nor a dataset the Hub has"
    )
    return (
        f"task.data.hub: dataset {name!r} could not be found ({offline}: {_first_line(str(exc))}); give a local "
        f"dataset folder (relative to the study file), a Hub id, or download it once online "
        f"(`hf download --repo-type dataset {name}`)"
    )
