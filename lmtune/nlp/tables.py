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
from lmtune.strict_yaml import utf16_or_32

__all__ = [
    "SPLIT_ALIASES",
    "check_columns",
    "check_labels",
    "dataset_splits",
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


def dataset_splits(
    dataset: Any, names: Any, source: str
) -> tuple[dict[str, list[Row] | None], dict[str, Any]]:
    """Rows of the train / validation / test splits of a ``DatasetDict``, and what the study records about them.

    ``names`` (a :class:`~lmtune.nlp.spec.SplitNames`, or None for the defaults) says which split plays which
    part; by default ``train``, and ``validation`` (or ``dev`` / ``valid`` / ``val``) and ``test`` where present.
    A missing or ``null`` validation or test split is carved out of train later. ``source`` names the dataset in
    errors, which name the field ``task.data.splits.<part>`` and list the splits there are.
    """
    available = list(dataset)
    chosen: dict[str, str | None] = {"train": "train", "validation": None, "test": None}
    for name in available:
        part = SPLIT_ALIASES.get(name)
        if part in ("validation", "test") and chosen[part] is None:
            chosen[part] = name
    if names is not None:
        chosen.update({part: getattr(names, part) for part in names.model_fields_set})
    rows: dict[str, list[Row] | None] = {}
    record: dict[str, Any] = {}
    for part, name in chosen.items():
        if name is None:
            rows[part] = None
            continue
        if name not in dataset:
            raise ConfigError(
                f"task.data.splits.{part}: split {name!r} is not in {source}; its splits are {available}"
                + (
                    ""
                    if part == "train"
                    else f"; name one of them, or write `{part}: null` to carve it from train"
                )
            )
        split = dataset[name]
        rows[part] = split.to_list()
        record[part] = {
            "split": name,
            "rows": len(split),
            "fingerprint": getattr(split, "_fingerprint", None),
        }
    return rows, record


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
    encoding = utf16_or_32(data) or "latin1"
    return ConfigError(
        f"file {str(path)!r} is not UTF-8 text ({where}); convert it, e.g. "
        f"`iconv -f {encoding} -t utf-8 {path.name} > fixed{path.suffix}`, and point the study at the converted file"
    )


def _type_names(values: Iterable[Any]) -> str:
    return " and ".join(sorted({type(v).__name__ for v in values}))


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
            if field.endswith(".label"):
                _check_label(row[column], field, column, number, source)
            elif not isinstance(row[column], str):
                raise ConfigError(
                    f"{field}: column {column!r} in row {number} of {source} must be text, but got "
                    f"{type(row[column]).__name__}; fix that row or point {field} at a text column"
                )
    for field, column in columns.items():
        if not field.endswith(".label") and not any(str(row[column]).strip() for row in rows):
            raise ConfigError(
                f"{field}: column {column!r} is empty in every row of {source}; point {field} at the text column"
            )
    labels = [field for field in columns if field.endswith(".label")]
    kinds = {type(row[columns[field]]).__name__ for field in labels for row in rows}
    if len(kinds) > 1:
        raise ConfigError(
            f"{labels[0]}: labels in {source} mix types ({', '.join(sorted(kinds))}), so 1 and '1' would be "
            f"two classes; write every label the same way"
        )


def _check_label(value: Any, field: str, column: str, number: int, source: str) -> None:
    """A class label is one plain value (text or a whole number), never blank or NaN."""
    where = f"{field}: column {column!r} in row {number} of {source}"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ConfigError(
            f"{where} must be a class label (text or a whole number), but got {shown}; fix that row"
        )
    if isinstance(value, str) and (not value.strip() or value.strip().lower() == "nan"):
        raise ConfigError(f"{where} is a blank or NaN label ({value!r}); fill or drop that row")


def check_labels(labels: Iterable[Any], known: Iterable[Any], source: str) -> None:
    """Labels of an evaluation split must occur in training: a class the model never saw cannot be predicted.

    ``source`` is the field the split comes from (``task.data.test``). Two mistakes get their own message: labels
    of another type than training's (``"1"`` against ``1``), and a split whose labels are all -1 (hidden, as in
    GLUE's test splits).
    """
    allowed = set(known)
    labels = list(labels)
    unknown = sorted({label for label in labels if label not in allowed}, key=repr)
    kinds, train_kinds = _type_names(labels), _type_names(allowed)
    if unknown and kinds != train_kinds:
        raise ConfigError(
            f"{source}: its labels are {kinds} values ({unknown[:5]}) but the training labels are "
            f"{train_kinds} values ({sorted(allowed, key=repr)[:5]}); make the label column one type in every "
            f"split (e.g. convert both to int)"
        )
    if unknown and set(labels) == {-1}:
        raise ConfigError(
            f"{source}: every label is -1, i.e. the labels are hidden (as in GLUE's test splits); use a "
            f"labelled split, or leave this one out (`null`) so that it is carved out of train"
        )
    if unknown:
        raise ConfigError(
            f"{source} has label(s) {unknown[:10]} that the training split does not contain "
            f"(training labels: {sorted(allowed, key=repr)[:20]}); fix the labels or the label column"
        )
