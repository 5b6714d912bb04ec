"""Pretrained weights are read from their files once per process and copied into each trial's model: every trial
starts from the pretrained weights (whatever earlier trials trained), with its own dropout, and a seeded trial gets
exactly the model ``from_pretrained`` would give it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from file_opens import FileOpens
from nlp_tasks import trec_task
from transformers import AutoModelForSequenceClassification, BertConfig, BertModel

import lmtune
from lmtune.nlp import load_task
from lmtune.nlp.hyperparameters import Hyperparameters
from lmtune.nlp.task import Task
from tests.nlp.conftest import minilm_folder

MAX_LENGTH = 32


def _pretrained_folder(folder: Path, seed: int = 0) -> Path:
    """A small pretrained BERT encoder (no head) with MiniLM's tokenizer, as save_pretrained writes it."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (minilm_folder() / name).exists():
            shutil.copy(minilm_folder() / name, folder / name)
    return folder


def _task(data_dir: Path, folder: Path, **training: Any) -> Task:
    spec = trec_task(data_dir, epochs=1, learning_rate=1e-3, **training)
    spec["model"] = {"path": str(folder)}
    spec["data"]["max_train_examples"] = 64
    spec["data"]["max_eval_examples"] = 32
    return load_task(spec, Path("."))


def _build(task: Task, seed: int = 0, **params: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    return task.build(Hyperparameters.from_params({**task.spec.training, **params}), MAX_LENGTH)


def _reference(folder: Path, labels: int, seed: int = 0) -> torch.nn.Module:
    """What ``from_pretrained`` gives under the same seed."""
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(folder, num_labels=labels)


def test_two_trials_read_the_weight_files_once(data_dir: Path, tmp_path: Path) -> None:
    folder = _pretrained_folder(tmp_path / "model")
    task = _task(data_dir, folder)
    study = lmtune.create_study(direction=task.direction)
    study.enqueue({"dropout": 0.1})
    study.enqueue({"dropout": 0.3})
    opens = FileOpens(folder / "model.safetensors")
    try:
        study.optimize(task, n_trials=1)
        after_first = opens.count()
        study.optimize(task, n_trials=1)
        after_second = opens.count()
    finally:
        opens.close()
    assert [r.state.value for r in study.trials] == ["COMPLETE", "COMPLETE"]
    assert after_first >= 1  # the watch sees the first trial read the weights
    assert after_second == after_first


def test_each_trial_starts_from_the_pretrained_weights_with_its_own_dropout(
    data_dir: Path, tmp_path: Path
) -> None:
    folder = _pretrained_folder(tmp_path / "model")
    task = _task(data_dir, folder)
    expected = _reference(folder, len(task.task_type.label_names), seed=0).state_dict()

    def same_as_from_pretrained(model: torch.nn.Module) -> bool:  # the new head too: drawn from the seed
        got = model.state_dict()
        return got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in expected)

    first = _build(task, seed=0, dropout=0.1)  # reads the files
    assert same_as_from_pretrained(first)
    with torch.no_grad():  # training changes the weights in place, as an optimizer step does
        for parameter in first.parameters():
            parameter.add_(1.0)
    second = _build(task, seed=0, dropout=0.3)  # from the weights kept
    assert same_as_from_pretrained(second)
    assert not {p.data_ptr() for p in first.parameters()} & {p.data_ptr() for p in second.parameters()}
    dropouts = [
        {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} for model in (first, second)
    ]
    assert dropouts == [{0.1}, {0.3}]
    assert (first.config.hidden_dropout_prob, second.config.hidden_dropout_prob) == (0.1, 0.3)
    assert second.config.name_or_path == str(folder)


def test_weight_files_changed_on_disk_are_read_again(data_dir: Path, tmp_path: Path) -> None:
    folder = _pretrained_folder(tmp_path / "model", seed=0)
    task = _task(data_dir, folder)
    before = _build(task).bert.embeddings.word_embeddings.weight
    _pretrained_folder(folder, seed=1)
    after = _build(task).bert.embeddings.word_embeddings.weight
    reference = _reference(folder, len(task.task_type.label_names)).bert.embeddings.word_embeddings.weight
    assert not torch.equal(before, after) and torch.equal(after, reference)


@pytest.mark.slow
def test_the_bundled_minilm_trial_model_is_the_one_from_pretrained_gives(data_dir: Path) -> None:
    task = _task(data_dir, minilm_folder())
    _build(task, seed=1)  # the weights are kept from here on
    second = _build(task, seed=2, dropout=0.2)
    reference = _reference(minilm_folder(), len(task.task_type.label_names), seed=2)
    expected, got = reference.state_dict(), second.state_dict()
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert {m.p for m in second.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}
