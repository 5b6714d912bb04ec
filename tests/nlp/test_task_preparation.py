"""Data preparation inside a fine-tuning task: loading checks, cleaning with its printed summary, augmentation
and the first-model curriculum, switched on from the ``task:`` section."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from nlp_tasks import trec_task

import lmtune
from lmtune.exceptions import ConfigError
from lmtune.nlp.data import read_rows
from lmtune.nlp.hyperparameters import Hyperparameters
from lmtune.nlp.tables import rows_from_dataset
from lmtune.nlp.task import load_task


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def tiny_task(root: Path, **data) -> dict:
    return {
        "type": "classification",
        "model": {"architecture": "bert", "vocab_size": 200},
        "data": {"root": str(root), "train": "train.jsonl", **data},
        "max_length": 16,
    }


def test_parquet_files_and_datasets_objects_are_read(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": ["a", "b"], "label": [0, 1]}), tmp_path / "train.parquet")
    assert read_rows(tmp_path / "train.parquet") == [{"text": "a", "label": 0}, {"text": "b", "label": 1}]
    import datasets

    ds = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["x"], "label": [1]}),
            "dev": datasets.Dataset.from_dict({"text": ["y"], "label": [0]}),
        }
    )
    assert rows_from_dataset(ds) == {
        "train": [{"text": "x", "label": 1}],
        "validation": [{"text": "y", "label": 0}],
    }
    with pytest.raises(ConfigError, match="not a readable Parquet"):
        (tmp_path / "bad.parquet").write_text("not parquet")
        read_rows(tmp_path / "bad.parquet")


def test_loading_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes("text,label\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 0xe9 at offset 14, line 2\).*iconv"):
        read_rows(tmp_path / "latin.csv")
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(6)] + [{"sentence": "x", "label": 0}]
    write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(ConfigError, match=r"task\.data\.text: column 'text' is not in train\.jsonl \(row 6"):
        load_task(tiny_task(tmp_path), tmp_path)
    write_jsonl(tmp_path / "train.jsonl", rows[:6])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "u", "label": 7}])
    with pytest.raises(ConfigError, match=r"task\.data\.test has label\(s\) \[7\]"):
        load_task(tiny_task(tmp_path, test="test.jsonl"), tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ConfigError, match="holds no rows"):
        load_task(tiny_task(tmp_path, train="empty.jsonl"), tmp_path)
    with pytest.raises(ConfigError, match="task.data.cleaning"):
        load_task(tiny_task(tmp_path, cleaning={"lowercas": True}), tmp_path)


def test_cleaning_from_the_task_section_prints_the_summary(data_dir: Path, capsys) -> None:
    spec = trec_task(data_dir)
    del spec["data"]["max_train_examples"]
    spec["data"]["cleaning"] = {"leakage": "drop"}
    task = load_task(spec, Path("."))
    printed = capsys.readouterr().out
    assert "data summary" in printed and "exact duplicates" in printed
    summary = task.data_summary
    assert summary.leakage["test"] == 10
    # the 71 duplicate questions of the file, less those whose copies the seeded split sent to validation
    assert summary.splits["train"].exact_duplicates == 59
    assert summary.leakage["validation"] > 0
    test_texts = {r["text"] for r in task.splits.test}
    assert not any(r["text"] in test_texts for r in task.splits.train)


@pytest.mark.slow
def test_augmentation_and_first_model_curriculum_change_only_the_training_data(data_dir: Path) -> None:
    spec = trec_task(data_dir, epochs=1)
    spec["data"].update(max_train_examples=160, max_eval_examples=48)
    task = load_task(spec, Path("."))
    params = {**task.spec.training, "augment_deletion": 0.2, "augment_copies": 1, "curriculum": "first_model"}
    hp = Hyperparameters.from_params(params)
    setup = task.setup(32)
    prepared = task._prepared(setup, params, hp, 32)
    assert len(prepared.train) > len(setup.train) and prepared.validation is setup.validation
    assert len(prepared.difficulty) == len(task.splits.train) + (len(prepared.train) - len(setup.train))
    study = lmtune.create_study(direction=task.direction, seed=0)
    study.enqueue({"augment_swap": 0.1, "curriculum": "first_model"})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains fastest on one thread when other processes share the cores
    try:
        study.optimize(task, n_trials=1)
    finally:
        torch.set_num_threads(threads)
    assert study.trials[0].state is lmtune.TrialState.COMPLETE, study.trials[0].failure_reason
