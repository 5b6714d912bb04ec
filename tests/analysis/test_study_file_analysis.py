"""`trackers:` and `final_evaluation:` in a study file, end to end through `lmtune run` and `lmtune report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from lmtune.analysis.evaluate import load_final_evaluation
from lmtune.cli import main
from lmtune.config import load_study_file
from lmtune.exceptions import ConfigError
from lmtune.storage import get_storage

OBJECTIVE = """
NOISE = {0: 0.4, 1: 0.0, 2: 0.02}

def objective(trial):
    x = trial.params["x"]
    seed = trial.params.get("seed", 0)
    trial.report(x, 0)
    # x near 0.8 is truly best; x near 0.2 gets lucky with the search's seed 0
    base = (x - 0.8) ** 2
    luck = NOISE[seed] if abs(x - 0.2) < 0.05 else 0.0
    return base - luck
"""

STUDY = """
study: honest
storage: sqlite:///study.db
objective: noisy:objective
direction: minimize
space:
  x: {type: float, low: 0.0, high: 1.0}
enqueue: [{x: 0.2}, {x: 0.8}, {x: 0.5}]
n_trials: 3
trackers: [tensorboard]
final_evaluation: {top_k: 2, seeds: 2}
"""


def _write(folder: Path, text: str) -> Path:
    (folder / "noisy.py").write_text(OBJECTIVE)
    path = folder / "study.yaml"
    path.write_text(text)
    return path


def test_run_with_trackers_and_final_evaluation(tmp_path: Path) -> None:
    path = _write(tmp_path, STUDY)
    runner = CliRunner()
    result = runner.invoke(main, ["run", str(path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert [c["params"]["x"] for c in summary["candidates"]] == [
        0.2,
        0.8,
    ]  # the search ranks the lucky one first
    assert summary["candidates"][summary["chosen"]]["params"] == {"x": 0.8}  # the mean picks the real best
    assert sorted(p.name for p in (tmp_path / "tensorboard" / "honest").iterdir() if p.is_dir()) == [
        "best",  # the best configuration and the final evaluation's test score
        "trial_00000",
        "trial_00001",
        "trial_00002",
    ]
    stored = load_final_evaluation("honest", get_storage(f"sqlite:///{tmp_path / 'study.db'}"))
    assert stored is not None and stored.best.params == {"x": 0.8}
    report = tmp_path / "report.html"
    result = runner.invoke(
        main,
        [
            "report",
            "honest",
            "--storage",
            f"sqlite:///{tmp_path / 'study.db'}",
            "-o",
            str(report),
            "--importance",
            "marginal",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "#1 (chosen)" in report.read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("final_evaluation: {top_k: 2, seed: 3}", "final_evaluation.seed"),
        ("final_evaluation: {top_k: 0}", "final_evaluation.top_k"),
        ("trackers: [comet]", "unknown tracker 'comet'"),
    ],
)
def test_bad_keys_are_config_errors(tmp_path: Path, extra: str, message: str) -> None:
    text = "\n".join(
        line for line in STUDY.splitlines() if not line.startswith(("trackers", "final_evaluation"))
    )
    path = _write(tmp_path, text + "\n" + extra + "\n")
    with pytest.raises(ConfigError, match=message):
        load_study_file(path)
