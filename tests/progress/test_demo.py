"""`make demo` shows a search: several trials, a scheduler that stops some early, then the report."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_the_quickstart_is_a_search_with_early_stopping() -> None:
    # Read as data: building the task would load the model and the data set.
    study = yaml.safe_load((REPO / "examples" / "quickstart.yaml").read_text())
    assert study["n_trials"] >= 6
    assert study["scheduler"]["name"] in ("asha", "hyperband", "median", "successive_halving")
    assert study["task"]["metric"] == "accuracy" and study["task"]["eval_every_steps"]


def test_make_demo_writes_the_report_after_the_search() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    lines = recipe.group(1).splitlines()
    assert "lmtune run examples/quickstart.yaml" in lines[0]
    assert "lmtune report quickstart" in lines[1] and "demo_report.html" in lines[1]
