"""Seeded, stratified k-fold cross-validation folds.

Every row lands in exactly one validation fold; within each label, rows are shuffled with the seed and dealt to
the folds in turn, so each fold keeps the class proportions (to within one row per class) and the same seed gives
the same folds on every machine.
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
    rows: Sequence[Mapping[str, Any]], k: int = 5, seed: int = 0, label: str | None = None
) -> list[tuple[list[Row], list[Row]]]:
    """``k`` pairs of (train rows, validation rows), stratified by the ``label`` column when given."""
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
