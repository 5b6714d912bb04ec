"""Evaluation metrics: accuracy, binary and macro F1 (fractions in 0..1), perplexity, and corpus BLEU (0..100)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["accuracy", "binary_f1", "corpus_bleu", "macro_f1", "perplexity"]


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of predictions equal to their label."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))


def macro_f1(predictions: Sequence[int], labels: Sequence[int], num_classes: int) -> float:
    """Unweighted mean of the per-class F1 scores over the classes present in labels or predictions."""
    pred, gold = np.asarray(predictions), np.asarray(labels)
    scores = []
    for c in range(num_classes):
        tp = int(np.sum((pred == c) & (gold == c)))
        fp = int(np.sum((pred == c) & (gold != c)))
        fn = int(np.sum((pred != c) & (gold == c)))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def binary_f1(predictions: Sequence[int], labels: Sequence[int], positive: int = 1) -> float:
    """F1 of the ``positive`` class, as GLUE reports it for MRPC and QQP (0 when it is never predicted or seen)."""
    pred, gold = np.asarray(predictions), np.asarray(labels)
    tp = int(np.sum((pred == positive) & (gold == positive)))
    wrong = int(np.sum((pred == positive) != (gold == positive)))
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def perplexity(total_loss: float, n_tokens: int) -> float:
    """exp of the token-weighted mean cross-entropy (``total_loss`` summed over ``n_tokens`` tokens, in nats)."""
    return math.exp(min(total_loss / max(n_tokens, 1), 50.0))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacreBLEU corpus score (0..100) with its default 13a tokenisation, one reference per sentence."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)
