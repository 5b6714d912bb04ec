"""Curriculum ordering: train on easy examples first, with difficulty scored by a first model.

A *first model* is any model fitted before the study: :func:`first_model_difficulty` fits a fast naive Bayes model on word
and bigram counts with k-fold cross-fitting, so every training row is scored by a model that never saw it (a model
scoring its own training rows calls them all easy). :func:`model_difficulty` takes the class probabilities of any
model (e.g. a fine-tuned :class:`~lmtune.integrations.sklearn.TransformerClassifier`), and :func:`loss_difficulty`
the per-example loss of a torch model. :func:`curriculum_order` turns scores into the order of the first epoch;
the runner's length-based ordering (``curriculum: shortest``) stays beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError

__all__ = ["STRATEGIES", "curriculum_order", "first_model_difficulty", "loss_difficulty", "model_difficulty"]

STRATEGIES = ("easy_first", "hard_first", "buckets")


def model_difficulty(probabilities: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """``1 - p(true label)`` per example from an ``[n, classes]`` probability matrix: 0 easy, 1 hard."""
    probs = np.asarray(probabilities, dtype=float)
    index = np.asarray(labels, dtype=int)
    if probs.ndim != 2 or probs.shape[0] != len(index):
        raise ConfigError(
            f"probabilities must have shape [n_examples, n_classes] with n_examples={len(index)}, "
            f"but got {probs.shape}"
        )
    if index.size and (index.min() < 0 or index.max() >= probs.shape[1]):
        raise ConfigError(
            f"labels must be class indices in [0, {probs.shape[1] - 1}], but got values from "
            f"{index.min()} to {index.max()}"
        )
    return 1.0 - probs[np.arange(len(index)), index]


def first_model_difficulty(
    texts: Sequence[str], labels: Sequence[Any], k: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-fold difficulty of each text under a multinomial naive Bayes model of word and bigram counts.

    Each fold's rows are scored by a model fitted on the other ``k - 1`` folds (stratified, seeded): about a
    second for 10,000 short texts, with no iterative solver to tune.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    from lmtune.nlp.folds import kfold_indices

    classes = sorted(set(labels), key=repr)
    if len(classes) < 2:
        raise ConfigError(f"a first model needs at least two classes, but the labels hold {classes}")
    y = np.array([classes.index(v) for v in labels])
    scores = np.zeros(len(texts))
    for held in kfold_indices(len(texts), k, seed, y.tolist()):
        train = np.setdiff1d(np.arange(len(texts)), held)
        vectorizer = CountVectorizer(ngram_range=(1, 2))
        features = vectorizer.fit_transform([texts[i] for i in train])
        model = MultinomialNB(alpha=0.1).fit(features, y[train])
        probs = np.zeros((len(held), len(classes)))
        probs[:, model.classes_] = model.predict_proba(vectorizer.transform([texts[i] for i in held]))
        scores[held] = model_difficulty(probs, y[held])
    return scores


def loss_difficulty(
    losses_of: Callable[[Sequence[int]], Sequence[float]], n_examples: int, batch_size: int = 32
) -> np.ndarray:
    """Per-example loss as difficulty: ``losses_of(indices)`` returns the mean loss of each indexed example
    (e.g. from a torch model in inference mode); it is called on batches of ``batch_size`` indices."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, but got {batch_size!r}")
    scores = np.zeros(n_examples)
    for start in range(0, n_examples, batch_size):
        index = list(range(start, min(start + batch_size, n_examples)))
        scores[index] = np.asarray(losses_of(index), dtype=float)
    return scores


def curriculum_order(
    scores: Sequence[float], strategy: str = "easy_first", seed: int = 0, buckets: int = 4
) -> list[int]:
    """The order of examples for the first epoch.

    ``easy_first``: ascending difficulty (ties keep input order); ``hard_first``: descending; ``buckets``: easy
    to hard in ``buckets`` equal groups, shuffled (seeded) inside each, so batches are not sorted by a noisy score.
    """
    values = np.asarray(scores, dtype=float)
    if strategy not in STRATEGIES:
        raise ConfigError(f"curriculum strategy must be one of {list(STRATEGIES)}, but got {strategy!r}")
    if not np.all(np.isfinite(values)):
        raise ConfigError("difficulty scores must be finite numbers")
    ascending = np.argsort(values, kind="stable")
    if strategy == "easy_first":
        return ascending.tolist()
    if strategy == "hard_first":
        return np.argsort(-values, kind="stable").tolist()
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise ConfigError(f"buckets must be a positive integer, but got {buckets!r}")
    rng = np.random.default_rng(seed)
    return [int(i) for part in np.array_split(ascending, buckets) for i in rng.permutation(part)]
