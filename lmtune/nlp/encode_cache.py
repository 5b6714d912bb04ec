"""Encoded splits cached on disk, so a study tokenises each split once for all its trials and worker processes.

The first process that needs a split at a maximum length encodes it and writes the result; every later trial, in
any process, reads it. The file name is a SHA-256 of everything the encoding depends on — the task type, the
tokenizer's full definition, the maximum length and the rows themselves (after splitting and cleaning) — so a
changed data file, split, cleaning step or tokenizer never reads a stale encoding. Files are JSON, written beside
their final name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmtune.nlp.task_types import Example

__all__ = ["cached_encoding", "encoding_key", "tokenizer_fingerprint"]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A text that changes whenever the tokenizer would encode differently: its serialised pipeline (fast
    tokenizers) or its vocabulary, with its class and special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = (
        backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    )
    special = json.dumps(getattr(tokenizer, "special_tokens_map", {}), sort_keys=True, default=str)
    return f"{type(tokenizer).__name__}\n{special}\n{definition}"


def encoding_key(task_type: str, tokenizer: Any, max_length: int, rows: Sequence[Any]) -> str:
    """The SHA-256 naming the encoding of ``rows`` by ``tokenizer`` at ``max_length`` tokens for ``task_type``."""
    digest = hashlib.sha256()
    for part in (task_type, str(int(max_length)), tokenizer_fingerprint(tokenizer)):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(json.dumps(list(rows), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def cached_encoding(folder: Path, key: str, encode: Callable[[], list[Example]]) -> list[Example]:
    """The examples stored under ``key`` in ``folder``, or ``encode()``'s, written there for the next reader."""
    path = Path(folder) / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        pass
    examples = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(examples, f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return examples
