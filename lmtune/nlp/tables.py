"""Rows from Parquet files and Hugging Face ``datasets``, and the checks every loaded table gets.

The loader in :mod:`lmtune.nlp.data` reads text formats; this module adds Parquet and in-memory
``datasets.Dataset`` / ``DatasetDict`` objects, and the errors a user needs when a table does not fit the task:
a file that is not UTF-8, an empty file, a missing column, labels in an evaluation split that training never saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = [
    "SPLIT_ALIASES",
    "check_columns",
    "check_labels",
    "encoding_error",
    "read_parquet",
    "rows_from_dataset",
]

Row = dict[str, Any]

#: Split names of ``DatasetDict`` objects and what lmtune calls them.
SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "val": "validation",
    "test": "test",
}


def read_parquet(path: Path) -> list[Row]:
    """Rows of a Parquet file (needs pyarrow, part of the ``nlp`` extra)."""
    from lmtune._imports import require

    parquet = require("pyarrow.parquet", "nlp")
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow raises its own error types for damaged files
        raise ConfigError(f"file {str(path)!r} is not a readable Parquet file: {exc}") from None
    return table.to_pylist()


def rows_from_dataset(dataset: Any) -> list[Row] | dict[str, list[Row]]:
    """Rows of a ``datasets.Dataset``, or ``{split: rows}`` of a ``DatasetDict`` (split names such as ``dev`` or
    ``valid`` become ``validation``)."""
    from lmtune._imports import require

    datasets = require("datasets", "nlp")
    if isinstance(dataset, (datasets.DatasetDict, Mapping)):
        splits: dict[str, list[Row]] = {}
        for name in dataset:
            if name not in SPLIT_ALIASES:
                raise ConfigError(f"dataset split {name!r} is not one of {sorted(SPLIT_ALIASES)}; rename it")
            splits[SPLIT_ALIASES[name]] = rows_from_dataset(dataset[name])  # type: ignore[assignment]
        return splits
    if not isinstance(dataset, datasets.Dataset):
        raise ConfigError(f"expected a datasets.Dataset or DatasetDict, but got {type(dataset).__name__}")
    return dataset.to_list()


def encoding_error(path: Path, error: UnicodeDecodeError) -> ConfigError:
    """The error for a file that is not UTF-8: the line and byte of the first bad character, and how to convert
    the file. (The decoder's own offset counts from the chunk it was reading, so the file is scanned again.)"""
    import gzip

    data = gzip.decompress(path.read_bytes()) if path.suffix.lower() == ".gz" else path.read_bytes()
    try:
        data.decode("utf-8")
        where = f"byte 0x{error.object[error.start : error.start + 1].hex()}"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        where = f"byte 0x{data[exc.start : exc.start + 1].hex()} at offset {exc.start}, line {line}"
    return ConfigError(
        f"file {str(path)!r} is not UTF-8 text ({where}); convert it, e.g. "
        f"`iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}`, and point the study at the converted file"
    )


def check_columns(rows: Sequence[Mapping[str, Any]], columns: Mapping[str, str], source: str) -> None:
    """Every row holds each needed column: ``columns`` maps the study-file field (``task.data.text``) to the column
    name. The error names the field, the row and the columns there are."""
    if not rows:
        raise ConfigError(f"{source} holds no rows; check the file (an empty file, or only a header line)")
    for number, row in enumerate(rows):
        for field, column in columns.items():
            if column not in row:
                raise ConfigError(
                    f"{field}: column {column!r} is not in {source} (row {number} has columns "
                    f"{sorted(row)}); set {field} to one of them"
                )
            if row[column] is None:
                raise ConfigError(
                    f"{field}: column {column!r} is empty in row {number} of {source}; fill or drop that row"
                )


def check_labels(labels: Iterable[Any], known: Iterable[Any], source: str) -> None:
    """Labels of an evaluation split must occur in training: a class the model never saw cannot be predicted."""
    allowed = set(known)
    unknown = sorted({label for label in labels if label not in allowed}, key=repr)
    if unknown:
        raise ConfigError(
            f"{source} has label(s) {unknown[:10]} that the training split does not contain "
            f"(training labels: {sorted(allowed, key=repr)[:20]}); fix the labels or the label column"
        )
