"""Seeded, stratified k-fold cross-validation folds.

Every row lands in exactly one validation fold; within each label, rows are shuffled with the seed and dealt to
the folds in turn, so each fold keeps the class proportions (to within one row per class) and the same seed gives
the same folds on every machine. Rows with the same text (or the same pair of texts) can be kept in one fold, so
that a duplicate never sits on both sides of a split.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError

__all__ = ["kfold_indices", "kfold_splits"]

Row = dict[str, Any]


def kfold_indices(n: int, k: int, seed: int, keys: Sequence[Hashable] | None = None) -> list[np.ndarray]:
    """The validation indices of each of ``k`` folds over ``n`` rows, stratified by ``keys`` (labels) if given.

    Dealing continues across classes where the previous class stopped, so fold sizes differ by at most one.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigError(f"k (the number of folds) must be an integer of at least 2, but got {k!r}")
    if k > n:
        raise ConfigError(f"k={k} folds need at least {k} rows, but there are {n}; lower k")
    if keys is not None and len(keys) != n:
        raise ConfigError(f"got {len(keys)} stratification keys for {n} rows")
    rng = np.random.default_rng(seed)
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys if keys is not None else [0] * n):
        groups.setdefault(key, []).append(i)
    folds: list[list[int]] = [[] for _ in range(k)]
    position = 0
    for key in sorted(groups, key=repr):
        for i in rng.permutation(groups[key]).tolist():
            folds[position % k].append(i)
            position += 1
    return [np.array(sorted(f), dtype=np.int64) for f in folds]


def kfold_splits(
    rows: Sequence[Mapping[str, Any]],
    k: int = 5,
    seed: int = 0,
    label: str | None = None,
    columns: Sequence[str] | None = None,
) -> list[tuple[list[Row], list[Row]]]:
    """``k`` pairs of (train rows, validation rows), stratified by the ``label`` column when given.

    With ``columns`` (a text column, or both columns of a sentence pair) rows whose texts are all equal go to the
    same fold: folds are dealt over the distinct texts, stratified by each text's first label.
    """
    if columns is not None:
        return _grouped_splits(rows, k, seed, label, list(columns))
    keys = None
    if label is not None:
        missing = [i for i, r in enumerate(rows) if label not in r]
        if missing:
            raise ConfigError(
                f"row {missing[0]} has no label column {label!r}; its columns are {sorted(rows[missing[0]])}"
            )
        keys = [r[label] for r in rows]
    out = []
    for held in kfold_indices(len(rows), k, seed, keys):
        held_set = set(held.tolist())
        out.append(
            ([dict(r) for i, r in enumerate(rows) if i not in held_set], [dict(rows[i]) for i in held])
        )
    return out


def _grouped_splits(
    rows: Sequence[Mapping[str, Any]], k: int, seed: int, label: str | None, columns: list[str]
) -> list[tuple[list[Row], list[Row]]]:
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, row in enumerate(rows):
        missing = [c for c in [*columns, *([label] if label else [])] if c not in row]
        if missing:
            raise ConfigError(f"row {i} has no column {missing[0]!r}; its columns are {sorted(row)}")
        groups.setdefault(tuple(row[c] for c in columns), []).append(i)
    members = list(groups.values())
    keys = [rows[m[0]][label] for m in members] if label is not None else None
    out = []
    for held in kfold_indices(len(members), k, seed, keys):
        held_rows = sorted(i for g in held.tolist() for i in members[g])
        held_set = set(held_rows)
        out.append(
            ([dict(r) for i, r in enumerate(rows) if i not in held_set], [dict(rows[i]) for i in held_rows])
        )
    return out
