"""Small task sections over the real data, on tiny from-config models (a few seconds per trial on 2 cores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY = {"hidden_size": 64, "num_heads": 2, "num_layers": 2, "ffn_size": 128}


def trec_task(data_dir: Path, **training: Any) -> dict[str, Any]:
    """A 6-class TREC task on a tiny from-config BERT (a few seconds per trial on 2 cores)."""
    return {
        "type": "classification",
        "model": {"architecture": "bert", "vocab_size": 600},
        "data": {
            "root": str(data_dir / "trec"),
            "train": "train.jsonl.gz",
            "test": "test.jsonl.gz",
            "max_train_examples": 480,
            "max_eval_examples": 96,
        },
        "max_length": 32,
        "patience": None,
        "training": {
            "epochs": 2,
            "learning_rate": 3e-3,
            "batch_size": 32,
            "warmup_ratio": 0.0,
            **TINY,
            **training,
        },
    }
