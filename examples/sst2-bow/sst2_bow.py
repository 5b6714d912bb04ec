"""SST-2 sentences as bag-of-words vectors (numpy only), for the examples in this folder.

Data: ../../../shared/data/sst2 from here, or the folder named by LMTUNE_DATA.
"""

from __future__ import annotations

import collections
import csv
import gzip
import os
import re
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("LMTUNE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def read_tsv(path: Path, limit: int) -> tuple[list[str], np.ndarray]:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))[:limit]
    return [row["sentence"] for row in rows], np.array([int(row["label"]) for row in rows])


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def vectors(texts: list[str], vocabulary: dict[str, int], width: int) -> np.ndarray:
    """One row of ``width`` columns per text: 1 where a vocabulary word occurs."""
    features = np.zeros((len(texts), width), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in words(text):
            column = vocabulary.get(word)
            if column is not None:
                features[row, column] = 1.0
    return features


def load(
    train_examples: int = 4000, dev_examples: int = 872, vocabulary_size: int = 4000
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(x_train, y_train), (x_dev, y_dev): the first ``train_examples`` training sentences and the GLUE dev set,
    over the ``vocabulary_size`` most frequent training words (``vocabulary_size`` columns, whatever the slice)."""
    train_texts, y_train = read_tsv(DATA / "sst2" / "train.tsv.gz", train_examples)
    dev_texts, y_dev = read_tsv(DATA / "sst2" / "dev.tsv.gz", dev_examples)
    counts = collections.Counter(word for text in train_texts for word in words(text))
    vocabulary = {word: i for i, (word, _) in enumerate(counts.most_common(vocabulary_size))}
    width = vocabulary_size
    return (vectors(train_texts, vocabulary, width), y_train), (vectors(dev_texts, vocabulary, width), y_dev)
