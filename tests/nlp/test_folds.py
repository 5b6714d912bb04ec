"""Seeded stratified k-fold folds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lmtune.exceptions import ConfigError
from lmtune.nlp.data import read_rows
from lmtune.nlp.folds import kfold_indices, kfold_splits


def test_every_row_is_in_exactly_one_validation_fold() -> None:
    folds = kfold_indices(23, 5, seed=0)
    together = np.concatenate(folds)
    assert sorted(together.tolist()) == list(range(23))
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]


def test_folds_keep_class_proportions() -> None:
    labels = [0] * 60 + [1] * 30 + [2] * 10
    for fold in kfold_indices(len(labels), 5, seed=3, keys=labels):
        assert Counter(labels[i] for i in fold) == {0: 12, 1: 6, 2: 2}


def test_folds_are_seeded() -> None:
    labels = [i % 3 for i in range(40)]
    a = kfold_indices(40, 4, seed=1, keys=labels)
    b = kfold_indices(40, 4, seed=1, keys=labels)
    c = kfold_indices(40, 4, seed=2, keys=labels)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_kfold_splits_return_disjoint_train_and_validation_rows() -> None:
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(10)]
    splits = kfold_splits(rows, k=5, seed=0, label="label")
    assert len(splits) == 5
    for train, val in splits:
        assert len(train) == 8 and len(val) == 2
        assert not {r["text"] for r in train} & {r["text"] for r in val}
        assert Counter(r["label"] for r in val) == {0: 1, 1: 1}


def test_bad_k_and_missing_label_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        kfold_indices(10, 1, seed=0)
    with pytest.raises(ConfigError, match="lower k"):
        kfold_indices(3, 5, seed=0)
    with pytest.raises(ConfigError, match="no label column 'y'"):
        kfold_splits([{"text": "a"}] * 4, k=2, label="y")


def test_trec_folds_are_stratified(shared_dir: Path) -> None:
    rows = read_rows(shared_dir / "data" / "trec" / "train.jsonl.gz")
    labels = [r["label"] for r in rows]
    overall = Counter(labels)
    for fold in kfold_indices(len(rows), 5, seed=0, keys=labels):
        counts = Counter(labels[i] for i in fold)
        for label, total in overall.items():
            assert abs(counts[label] - total / 5) <= 1
