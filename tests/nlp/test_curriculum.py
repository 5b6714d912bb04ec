"""Difficulty scores from a first model and the curriculum orders built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmtune.exceptions import ConfigError
from lmtune.nlp.curriculum import curriculum_order, first_model_difficulty, loss_difficulty, model_difficulty
from lmtune.nlp.data import read_rows


def test_model_difficulty_is_one_minus_the_true_class_probability() -> None:
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    assert model_difficulty(probs, [0, 0, 1]).tolist() == pytest.approx([0.1, 0.7, 0.5])
    with pytest.raises(ConfigError, match="class indices"):
        model_difficulty(probs, [0, 2, 1])
    with pytest.raises(ConfigError, match="shape"):
        model_difficulty(probs, [0, 1])


def test_orders() -> None:
    scores = [0.5, 0.1, 0.9, 0.1, 0.3, 0.7]
    assert curriculum_order(scores, "easy_first") == [1, 3, 4, 0, 5, 2]
    assert curriculum_order(scores, "hard_first") == [2, 5, 0, 4, 1, 3]
    buckets = curriculum_order(scores, "buckets", seed=0, buckets=3)
    assert [set(buckets[i : i + 2]) for i in (0, 2, 4)] == [{1, 3}, {4, 0}, {5, 2}]
    assert buckets == curriculum_order(scores, "buckets", seed=0, buckets=3)
    with pytest.raises(ConfigError, match="strategy"):
        curriculum_order(scores, "random")


def test_loss_difficulty_batches_the_calls() -> None:
    calls: list[list[int]] = []

    def losses(index: list[int]) -> list[float]:
        calls.append(list(index))
        return [float(i) ** 2 for i in index]

    assert loss_difficulty(losses, 5, batch_size=2).tolist() == [0, 1, 4, 9, 16]
    assert calls == [[0, 1], [2, 3], [4]]


def test_first_model_scores_mislabelled_examples_as_hard(shared_dir: Path) -> None:
    rows = read_rows(shared_dir / "data" / "trec" / "train.jsonl.gz")[:3000]
    texts = [r["text"] for r in rows]
    labels = [r["label"] for r in rows]
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(rows), size=150, replace=False)
    noisy = list(labels)
    for i in flipped:
        noisy[i] = (labels[i] + 1) % 6
    scores = first_model_difficulty(texts, noisy, k=5, seed=0)
    assert scores.shape == (len(rows),) and scores.min() >= 0 and scores.max() <= 1
    clean = np.setdiff1d(np.arange(len(rows)), flipped)
    assert scores[flipped].mean() > scores[clean].mean() + 0.4
    hardest = set(curriculum_order(scores, "hard_first")[:300])
    assert len(hardest & set(flipped.tolist())) > 100
    assert np.array_equal(scores, first_model_difficulty(texts, noisy, k=5, seed=0))
