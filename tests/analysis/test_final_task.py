"""The final evaluation over the language-model task: re-runs with fresh seeds, one test of the chosen model with
its error analysis (real TREC data, a tiny from-config BERT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import lmtune
from lmtune.analysis.evaluate import final_evaluation
from lmtune.analysis.finish import task_test
from lmtune.samplers import RandomSampler

TINY = {"hidden_size": 64, "num_heads": 2, "num_layers": 2, "ffn_size": 128}


@pytest.mark.slow
def test_final_evaluation_of_a_classification_task(shared_dir: Path) -> None:
    from lmtune.nlp import load_task

    task = load_task(
        {
            "type": "classification",
            "model": {"architecture": "bert", "vocab_size": 600},
            "data": {
                "root": str(shared_dir / "data" / "trec"),
                "train": "train.jsonl.gz",
                "test": "test.jsonl.gz",
                "max_train_examples": 256,
                "max_eval_examples": 64,
            },
            "max_length": 32,
            "patience": None,
            "training": {"epochs": 1, "batch_size": 32, "warmup_ratio": 0.0, **TINY},
        },
        Path("."),
    )
    study = lmtune.create_study(
        direction=task.direction,
        sampler=RandomSampler(seed=0),
        space={"learning_rate": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True}},
    )
    study.optimize(task, n_trials=2)
    tested = []

    def test(params: dict, runs: list) -> object:
        tested.append(runs[0].params)
        return task_test(task, runs[0])

    result = final_evaluation(study, task, top_k=1, seeds=2, test=test)
    assert [r["seed"] for r in tested] == [1]
    assert len(result.best.scores) == 2
    test_result = result.test
    assert test_result is not None and test_result.metric == "accuracy"
    assert 0 <= test_result.ci_low <= test_result.score <= test_result.ci_high <= 1
    matrix = np.array(test_result.details["confusion_matrix"])
    n_labels = len(task.task_type.label_names)
    assert matrix.shape == (n_labels, n_labels) and matrix.sum() == test_result.n_examples
    assert np.trace(matrix) / matrix.sum() == pytest.approx(test_result.score)
    errors = test_result.details["confident_errors"]
    assert errors and all(e["label"] != e["predicted"] for e in errors)
    assert [e["probability"] for e in errors] == sorted((e["probability"] for e in errors), reverse=True)
