"""Pretrained weights read once per process, copied into each trial's model.

Every trial of a study starts from the same files, so reading them and turning them into tensors is paid once: the
process keeps the last pretrained model it loaded (its weights, config and generation config) and each trial builds
its own model from copies of those tensors, so one trial's training never changes another's starting weights.

The entry is keyed by the model's files (name, size and modification time: a file rewritten on disk is read again)
and by what else changes the loaded tensors (the model class, the number of labels). One model at most is kept, so
a process holds one extra copy of the weights of the model it tunes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["Pretrained", "files_signature", "last_pretrained"]


@dataclass(frozen=True)
class Pretrained:
    """A model as loaded from its files: its class, its config, the tensors the files held (not the freshly
    initialised ones, such as a new classification head) and its generation config (None for encoders)."""

    model_class: type
    config: Any
    weights: Mapping[str, torch.Tensor]
    generation_config: Any = None

    def copy_of_weights(self) -> dict[str, torch.Tensor]:
        """The weights for one trial: tensors of its own."""
        return {name: tensor.clone() for name, tensor in self.weights.items()}


_LAST: dict[Hashable, Pretrained] = {}
_LOCK = threading.Lock()


def files_signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size (bytes) and modification time (ns) of a model file, or of each file of a model folder."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    signature = []
    for file in files:
        stat = file.stat()
        signature.append((file.name, stat.st_size, stat.st_mtime_ns))
    return tuple(signature)


def last_pretrained(key: Hashable, load: Callable[[], Pretrained]) -> Pretrained:
    """The model kept under ``key``, loaded by ``load`` when it is not the one kept (which it then replaces).

    Loading draws from torch's random generator (a new head is initialised) without advancing it, so a trial's
    model is the same whether or not its weights were already kept."""
    with _LOCK:
        if key not in _LAST:
            _LAST.clear()  # free the previous model before reading the next
            with torch.random.fork_rng(devices=[]):
                _LAST[key] = load()
        return _LAST[key]
