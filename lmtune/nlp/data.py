"""Loading dataset files and splitting them into train / validation / test.

Readers turn CSV, TSV, JSON, JSONL and plain-text files (gzip-compressed or not) into lists of row dicts; the
splitters are seeded and stratified so a study sees the same split on every run and machine. Cleaning,
deduplication and augmentation build on these functions but live elsewhere.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError

__all__ = [
    "DATA_FORMATS",
    "Splits",
    "expand_path",
    "file_sha256",
    "make_splits",
    "read_rows",
    "split_off",
    "split_tail",
    "subsample",
]

Row = dict[str, Any]

# File name suffix (after an optional ``.gz``) -> format name.
DATA_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".txt": "text",
    ".tokens": "text",
    ".raw": "text",
    ".parquet": "parquet",
}

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_path(text: str, base_dir: Path) -> Path:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in ``text`` and resolve it relative to ``base_dir``.

    This lets a study file say ``${LMTUNE_DATA:-../../shared/data}/sst2/train.tsv.gz``: an environment variable
    points at the data where it lives elsewhere, and the default keeps a fresh checkout working.
    """

    def substitute(match: re.Match[str]) -> str:
        value = os.environ.get(match["name"])
        if value is None:
            if match["default"] is None:
                raise ConfigError(
                    f"environment variable {match['name']!r} in {text!r} is not set; set it, "
                    f"or write ${{{match['name']}:-default}}"
                )
            return match["default"]
        return value

    path = Path(_VAR.sub(substitute, text)).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


def file_format(path: Path) -> str:
    """The format of ``path`` from its suffix (``data.tsv.gz`` -> ``tsv``); ConfigError when unknown."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = DATA_FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ConfigError(
            f"file {str(path)!r} has an unknown format; use one of "
            f"{', '.join(sorted(DATA_FORMATS))} (optionally with .gz)"
        )
    return fmt


def _open_text(path: Path) -> io.TextIOBase:
    # utf-8-sig: a leading byte-order mark (as in the MRPC release) would otherwise stick to the first column name
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - returned to the caller's with-block


def read_rows(path: Path, fmt: str | None = None) -> list[Row]:
    """Read a table of rows: CSV/TSV with a header line, a JSON list of objects, JSONL, Parquet, or text (one row
    per non-empty line, in the column ``text``). ``fmt`` overrides the format the suffix implies (a ``.txt`` file
    holding TSV). A file that is not UTF-8 is a ConfigError saying where."""
    from lmtune.nlp.tables import encoding_error, read_parquet

    fmt = fmt or file_format(path)
    if fmt == "parquet":
        return read_parquet(path)
    try:
        return _read_text_rows(path, fmt)
    except UnicodeDecodeError as exc:
        raise encoding_error(path, exc) from None
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise ConfigError(
            f"file {str(path)!r} ends in .gz but is not a complete gzip file; compress it with gzip, "
            f"or remove .gz from its name if it is plain text"
        ) from None


def _read_text_rows(path: Path, fmt: str) -> list[Row]:
    with _open_text(path) as f:
        if fmt in ("csv", "tsv"):
            # QUOTE_NONE for TSV: GLUE files hold bare quote characters inside sentences.
            reader = csv.DictReader(
                f,
                delimiter="\t" if fmt == "tsv" else ",",
                quoting=csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL,
            )
            return [dict(row) for row in reader]
        if fmt == "jsonl":
            return [_json_object(line, path, n) for n, line in enumerate(f, 1) if line.strip()]
        if fmt == "json":
            data = json.load(f)
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise ConfigError(f"file {str(path)!r} must hold a JSON list of objects")
            return data
        return [{"text": line.rstrip("\r\n")} for line in f if line.strip()]


def _json_object(line: str, path: Path, number: int) -> Row:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"file {str(path)!r} line {number} is not valid JSON: {exc}") from None
    if not isinstance(row, dict):
        raise ConfigError(f"file {str(path)!r} line {number} must be a JSON object, got {type(row).__name__}")
    return row


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, recorded in the study so a result can be tied to its data."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Splits:
    """Rows of the three splits."""

    train: list[Row]
    validation: list[Row]
    test: list[Row]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def _strata(keys: Sequence[Hashable] | None, n: int) -> list[list[int]]:
    if keys is None:
        return [list(range(n))]
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return [groups[k] for k in sorted(groups, key=repr)]


def split_off(
    rows: Sequence[Row], fraction: float, seed: int, keys: Sequence[Hashable] | None = None
) -> tuple[list[Row], list[Row]]:
    """Split ``rows`` into (rest, held out), holding out ``fraction`` of each stratum of ``keys`` (labels).

    Seeded: the same rows, fraction and seed give the same split. Each stratum gives ``round(fraction * size)``
    rows, so class proportions are kept; order within both parts follows the input order.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"a split fraction must be in (0, 1), but got {fraction!r}")
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    for members in _strata(keys, len(rows)):
        count = int(round(fraction * len(members)))
        held.update(rng.permutation(members)[:count].tolist())
    rest = [r for i, r in enumerate(rows) if i not in held]
    out = [r for i, r in enumerate(rows) if i in held]
    return rest, out


def split_tail(rows: Sequence[Row], fraction: float) -> tuple[list[Row], list[Row]]:
    """Split off the last ``fraction`` of ``rows``, keeping text contiguous (held-out text for language models)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"a split fraction must be in (0, 1), but got {fraction!r}")
    cut = len(rows) - int(round(fraction * len(rows)))
    return list(rows[:cut]), list(rows[cut:])


def make_splits(
    train: Sequence[Row],
    validation: Sequence[Row] | None,
    test: Sequence[Row] | None,
    *,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    label: str | None = None,
    contiguous: bool = False,
) -> Splits:
    """Complete the splits a user gave: a missing test and/or validation split is carved out of train.

    One file: a seeded split into (1 - v - t, v, t), stratified by the ``label`` column if given. Train and test
    without validation: ``validation_fraction`` of train becomes validation; given splits stay untouched.
    ``contiguous`` cuts from the end instead of sampling (language-model text).
    """

    def carve(rows: Sequence[Row], fraction: float, offset: int) -> tuple[list[Row], list[Row]]:
        if contiguous:
            return split_tail(rows, fraction)
        keys = [r[label] for r in rows] if label is not None else None
        return split_off(rows, fraction, seed + offset, keys)

    rest = list(train)
    if test is None and validation is None:
        rest, test_rows = carve(rest, test_fraction, 0)
        rest, val_rows = carve(rest, validation_fraction / (1 - test_fraction), 1)
        return Splits(rest, val_rows, test_rows)
    if test is None:
        rest, test_rows = carve(rest, test_fraction, 0)
    else:
        test_rows = list(test)
    if validation is None:
        rest, val_rows = carve(rest, validation_fraction, 1)
    else:
        val_rows = list(validation)
    return Splits(rest, val_rows, test_rows)


def subsample(rows: Sequence[Row], limit: int | None, seed: int, *, keep_order: bool = False) -> list[Row]:
    """At most ``limit`` rows: a seeded random subset (in input order), or the first ``limit`` with
    ``keep_order`` (contiguous text)."""
    if limit is None or len(rows) <= limit:
        return list(rows)
    if keep_order:
        return list(rows[:limit])
    keep = set(np.random.default_rng(seed).permutation(len(rows))[:limit].tolist())
    return [r for i, r in enumerate(rows) if i in keep]
