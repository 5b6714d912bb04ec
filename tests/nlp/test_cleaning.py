"""Cleaning steps, duplicates, conflicting labels and leakage: constructed cases and the shared datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmtune.exceptions import ConfigError
from lmtune.nlp.cleaning import (
    CleaningOptions,
    clean_rows,
    clean_splits,
    find_duplicates,
    near_key,
    normalize_text,
)
from lmtune.nlp.data import read_rows

OFF = CleaningOptions(unicode_form=None, whitespace=False, drop_empty=False, drop_duplicates=False)


def rows(*pairs: tuple[str, int]) -> list[dict]:
    return [{"text": t, "label": lab} for t, lab in pairs]


def test_unicode_normalisation_folds_compatibility_forms() -> None:
    text = "ﬁne Ｃａｆé"  # ligature, full-width letters, decomposed accent
    assert normalize_text(text, CleaningOptions(unicode_form="NFKC", whitespace=False)) == "fine Café"
    assert normalize_text(text, OFF) == text


def test_whitespace_collapses_runs_and_removes_invisible_characters() -> None:
    text = "  a\tgood\u200b \n\n film\ufeff  "
    assert normalize_text(text, CleaningOptions(unicode_form=None)) == "a good film"


def test_lowercase() -> None:
    assert normalize_text("A GOOD Film", CleaningOptions(lowercase=True)) == "a good film"
    assert normalize_text("A GOOD Film", CleaningOptions()) == "A GOOD Film"


def test_strip_markup_removes_tags_and_decodes_entities() -> None:
    text = "<p>A <b>great</b> film &amp; a fine cast<br />ending</p>"
    assert normalize_text(text, CleaningOptions(strip_markup=True)) == "A great film & a fine cast ending"
    assert "<b>" in normalize_text(text, CleaningOptions())


def test_strip_special_drops_controls_and_emoji_but_keeps_punctuation_and_currency() -> None:
    text = "Great\x00 movie 😀!! Costs $5 – worth it\u200e."
    cleaned = normalize_text(text, CleaningOptions(strip_special=True))
    assert cleaned == "Great movie !! Costs $5 – worth it."


def test_empty_rows_are_dropped_and_counted() -> None:
    kept, report = clean_rows(rows(("good", 1), ("   ", 0), ("\u200b", 1), ("bad", 0)), "text", label="label")
    assert [r["text"] for r in kept] == ["good", "bad"]
    assert report.empty == 2 and report.rows_in == 4 and report.rows_out == 2
    kept, report = clean_rows(rows(("good", 1), ("  ", 0)), "text", CleaningOptions(drop_empty=False))
    assert len(kept) == 2 and report.empty == 1


def test_exact_and_near_duplicates_are_counted_and_dropped_as_asked() -> None:
    data = rows(
        ("A fine film.", 1), ("A fine film.", 1), ("a FINE film", 1), ("A  fine film.", 1), ("Dull", 0)
    )
    kept, report = clean_rows(data, "text", label="label")
    # "A  fine film." equals the first after whitespace cleaning; "a FINE film" differs only in case/punctuation.
    assert report.exact_duplicates == 2 and report.near_duplicates == 1
    assert [r["text"] for r in kept] == ["A fine film.", "a FINE film", "Dull"]
    kept, _ = clean_rows(data, "text", CleaningOptions(drop_near_duplicates=True), label="label")
    assert [r["text"] for r in kept] == ["A fine film.", "Dull"]
    kept, report = clean_rows(data, "text", CleaningOptions(drop_duplicates=False), label="label")
    assert len(kept) == 5 and report.exact_duplicates == 2


def test_near_key_ignores_case_accents_punctuation_and_markup() -> None:
    assert near_key("<i>Café</i>, GREAT!") == near_key("cafe great") == "cafe great"
    assert near_key("cafe great") != near_key("cafe grate")


def test_duplicates_over_several_columns_compare_the_pair() -> None:
    pairs = [{"src": "a", "tgt": "x"}, {"src": "a", "tgt": "y"}, {"src": "a", "tgt": "x"}]
    exact, near = find_duplicates(pairs, ["src", "tgt"])
    assert exact == [2] and near == []


def test_conflicting_labels_are_reported_and_optionally_dropped() -> None:
    data = rows(("fine", 1), ("fine", 0), ("dull", 0), ("fine", 1), ("good", 1))
    kept, report = clean_rows(data, "text", label="label")
    assert report.conflicting_texts == 1 and report.conflicting_rows_dropped == 0
    assert [r["text"] for r in kept] == ["fine", "dull", "good"]
    kept, report = clean_rows(data, "text", CleaningOptions(conflicts="drop"), label="label")
    assert [r["text"] for r in kept] == ["dull", "good"] and report.conflicting_rows_dropped == 3


def test_leakage_is_found_across_splits_and_dropped_from_train_only() -> None:
    splits = {
        "train": rows(("a good film", 1), ("bad", 0), ("Shared text.", 1), ("near one!", 0)),
        "validation": rows(("Shared text.", 1), ("other", 0)),
        "test": rows(("NEAR ONE", 0), ("fresh", 1)),
    }
    cleaned, summary = clean_splits(splits, "text", label="label")
    assert summary.leakage == {"validation": 1, "test": 0}
    assert summary.near_leakage == {"validation": 1, "test": 1}
    assert len(cleaned["train"]) == 4
    cleaned, summary = clean_splits(splits, "text", CleaningOptions(leakage="drop"), label="label")
    assert [r["text"] for r in cleaned["train"]] == ["a good film", "bad", "near one!"]
    assert summary.splits["train"].leaked_rows_dropped == 1
    assert cleaned["validation"] == [dict(r) for r in splits["validation"]]


def test_cleaning_does_not_modify_the_input_rows() -> None:
    data = rows(("  Spaced  ", 1))
    clean_rows(data, "text", CleaningOptions(lowercase=True))
    assert data[0]["text"] == "  Spaced  "


def test_bad_options_and_missing_columns_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unicode_form"):
        CleaningOptions(unicode_form="NFX")
    with pytest.raises(ConfigError, match="cleaning.conflicts"):
        CleaningOptions(conflicts="keep")
    with pytest.raises(ConfigError, match="cleaning.lowercas"):
        CleaningOptions.from_config({"lowercas": True})
    with pytest.raises(ConfigError, match="no column 'sentence'"):
        clean_rows(rows(("x", 1)), "sentence")
    assert CleaningOptions.from_config({"lowercase": True}).lowercase


def test_summary_prints_every_count() -> None:
    splits = {"train": rows(("a", 1), ("a", 1), ("b", 0)), "test": rows(("a", 1))}
    _, summary = clean_splits(splits, "text", label="label")
    text = summary.format()
    assert "exact duplicates" in text and "train/test leakage: 1 shared texts" in text
    assert "label 1" in text
    assert summary.to_dict()["splits"]["train"]["exact_duplicates"] == 1


# The shared datasets: the counts every user of them should know about.
def _read(shared_dir: Path, name: str) -> list[dict]:
    return read_rows(shared_dir / "data" / name)


def test_sst2_has_371_duplicate_sentences_5_conflicts_and_no_dev_leakage(shared_dir: Path) -> None:
    train, dev = _read(shared_dir, "sst2/train.tsv.gz"), _read(shared_dir, "sst2/dev.tsv.gz")
    raw = CleaningOptions(unicode_form=None, whitespace=False)
    cleaned, summary = clean_splits({"train": train, "validation": dev}, "sentence", raw, label="label")
    report = summary.splits["train"]
    assert report.rows_in == 67_349 and report.exact_duplicates == 371 and report.rows_out == 66_978
    assert report.conflicting_texts == 5
    assert summary.leakage == {"validation": 0}
    assert summary.splits["validation"].exact_duplicates == 0


def test_ag_news_subset_has_13_duplicates_and_8_texts_shared_with_test(shared_dir: Path) -> None:
    train, test = (
        _read(shared_dir, "ag_news/train_subset10k.jsonl.gz"),
        _read(shared_dir, "ag_news/test.jsonl.gz"),
    )
    raw = CleaningOptions(unicode_form=None, whitespace=False)
    _, summary = clean_splits({"train": train, "test": test}, "text", raw, label="label")
    assert summary.splits["train"].exact_duplicates == 13
    assert summary.leakage == {"test": 8}
    # Tidying the spacing reveals one more pair that differed only in whitespace.
    cleaned, summary = clean_splits(
        {"train": train, "test": test}, "text", CleaningOptions(leakage="drop"), label="label"
    )
    assert summary.splits["train"].exact_duplicates == 14
    assert summary.splits["train"].leaked_rows_dropped >= 8
    test_texts = {r["text"] for r in cleaned["test"]}
    assert not any(r["text"] in test_texts for r in cleaned["train"])


def test_trec_has_71_duplicate_questions_and_10_shared_with_test(shared_dir: Path) -> None:
    train, test = _read(shared_dir, "trec/train.jsonl.gz"), _read(shared_dir, "trec/test.jsonl.gz")
    _, summary = clean_splits({"train": train, "test": test}, "text", label="label")
    assert summary.splits["train"].exact_duplicates == 71
    assert summary.leakage == {"test": 10}
