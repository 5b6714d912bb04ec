"""Encoded splits are cached on disk once per study: other processes read them, and any change of rows, tokenizer
or maximum length gets its own entry."""

from __future__ import annotations

import json
from pathlib import Path

from nlp_tasks import trec_task

import lmtune
from lmtune.nlp import load_task
from lmtune.nlp.encode_cache import cached_encoding, encoding_key
from lmtune.nlp.task import ENCODED_FOLDER


def test_a_second_process_reads_the_encoding_the_first_wrote(data_dir: Path, tmp_path: Path) -> None:
    spec = trec_task(data_dir)
    first, second = load_task(spec, Path(".")), load_task(spec, Path("."))  # as two worker processes would
    first.encode_cache = second.encode_cache = tmp_path
    written = first.encoded("train", 32)
    [entry] = list(tmp_path.glob("*.json"))
    stored = json.loads(entry.read_text())
    stored[0]["input_ids"] = [7, 7, 7]  # proves the second task reads the file rather than encoding again
    entry.write_text(json.dumps(stored))
    read = second.encoded("train", 32)
    assert read[0]["input_ids"] == [7, 7, 7] and read[1:] == written[1:]


def test_rows_tokenizer_and_length_each_change_the_key(data_dir: Path) -> None:
    task = load_task(trec_task(data_dir), Path("."))
    rows = task.splits.train
    key = encoding_key("classification", task.tokenizer, 32, rows)
    assert key == encoding_key("classification", task.tokenizer, 32, list(rows))
    other_tokenizer = load_task(
        trec_task(data_dir, seed=1) | {"model": {"architecture": "bert", "vocab_size": 500}}, Path(".")
    )
    assert key != encoding_key("classification", task.tokenizer, 48, rows)
    assert key != encoding_key("classification", task.tokenizer, 32, rows[1:])
    assert key != encoding_key("classification", other_tokenizer.tokenizer, 32, rows)
    assert key != encoding_key("causal-lm", task.tokenizer, 32, rows)


def test_an_entry_is_encoded_once(tmp_path: Path) -> None:
    calls: list[int] = []

    def encode() -> list[dict[str, object]]:
        calls.append(1)
        return [{"input_ids": [1, 2], "labels": 0}]

    assert cached_encoding(tmp_path, "k", encode) == cached_encoding(tmp_path, "k", encode)
    assert len(calls) == 1 and not list(tmp_path.glob(".*.tmp"))


def test_a_study_keeps_its_encodings_beside_its_checkpoints(data_dir: Path, tmp_path: Path) -> None:
    task = load_task(trec_task(data_dir, epochs=1), Path("."))
    study = lmtune.create_study(direction=task.direction, storage=f"sqlite:///{tmp_path / 's.db'}")
    study.optimize(task, n_trials=1)
    assert task.encode_cache == study.checkpoint_root / ENCODED_FOLDER
    assert len(list(task.encode_cache.glob("*.json"))) == 2  # train and validation, at the task's max length
