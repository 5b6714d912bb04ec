"""Reading CSV/TSV/JSON/JSONL/text files (gzip or not) and the seeded, stratified splits."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from lmtune.exceptions import ConfigError
from lmtune.nlp.data import expand_path, make_splits, read_rows, split_off, subsample

ROWS = [{"text": f"sentence number {i}", "label": i % 3} for i in range(300)]


def _write(path: Path, text: str) -> Path:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_every_format_reads_the_same_rows(tmp_path: Path, gz: bool) -> None:
    rows = [{"text": 'a, "quoted" one', "label": "x"}, {"text": "zwei Äpfel", "label": "y"}]
    ext = ".gz" if gz else ""
    files = {
        "csv": 'text,label\n"a, ""quoted"" one",x\nzwei Äpfel,y\n',
        "tsv": 'text\tlabel\na, "quoted" one\tx\nzwei Äpfel\ty\n',
        "jsonl": "".join(json.dumps(r) + "\n" for r in rows),
        "json": json.dumps(rows),
    }
    for fmt, text in files.items():
        assert read_rows(_write(tmp_path / f"d.{fmt}{ext}", text)) == rows, fmt
    lines = read_rows(_write(tmp_path / f"d.txt{ext}", "first line\n\nsecond line\n"))
    assert lines == [{"text": "first line"}, {"text": "second line"}]


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown format"):
        read_rows(_write(tmp_path / "d.xlsx", "x"))
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        read_rows(_write(tmp_path / "d.jsonl", '{"a": 1}\n{oops\n'))


def test_stratified_split_keeps_class_shares_and_is_seeded() -> None:
    keys = [r["label"] for r in ROWS]
    rest, held = split_off(ROWS, 0.1, seed=3, keys=keys)
    assert len(held) == 30 and len(rest) == 270
    assert Counter(r["label"] for r in held) == {0: 10, 1: 10, 2: 10}
    assert split_off(ROWS, 0.1, seed=3, keys=keys) == (rest, held)
    assert split_off(ROWS, 0.1, seed=4, keys=keys)[1] != held
    assert not {r["text"] for r in held} & {r["text"] for r in rest}


def test_one_file_gives_80_10_10_and_train_plus_test_carves_validation() -> None:
    splits = make_splits(ROWS, None, None, validation_fraction=0.1, test_fraction=0.1, seed=0, label="label")
    assert splits.sizes() == {"train": 240, "validation": 30, "test": 30}
    assert Counter(r["label"] for r in splits.test) == {0: 10, 1: 10, 2: 10}
    test = ROWS[:20]
    splits = make_splits(
        ROWS[20:], None, test, validation_fraction=0.1, test_fraction=0.1, seed=0, label="label"
    )
    assert splits.test == test  # the given test split stays untouched
    assert splits.sizes() == {"train": 253, "validation": 27, "test": 20}  # 9 per class of 93-94


def test_contiguous_split_holds_out_the_end_of_the_text() -> None:
    splits = make_splits(
        ROWS, None, None, validation_fraction=0.1, test_fraction=0.1, seed=0, contiguous=True
    )
    assert splits.test == ROWS[270:] and splits.validation == ROWS[240:270] and splits.train == ROWS[:240]
    assert subsample(ROWS, 5, 0, keep_order=True) == ROWS[:5]
    picked = subsample(ROWS, 50, 0)
    assert len(picked) == 50 and picked == subsample(ROWS, 50, 0) and picked != ROWS[:50]


def test_paths_expand_environment_variables_with_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LMTUNE_TEST_DATA", raising=False)
    assert expand_path("${LMTUNE_TEST_DATA:-sub}/f.tsv", tmp_path) == tmp_path / "sub" / "f.tsv"
    monkeypatch.setenv("LMTUNE_TEST_DATA", "/elsewhere")
    assert expand_path("${LMTUNE_TEST_DATA:-sub}/f.tsv", tmp_path) == Path("/elsewhere/f.tsv")
    with pytest.raises(ConfigError, match="LMTUNE_UNSET_VAR"):
        expand_path("${LMTUNE_UNSET_VAR}/f.tsv", tmp_path)
