"""Fused trials on a real SST-2 slice behave as trials run alone by ``TrialRunner``: the same evaluations,
reports and checkpoints; a trial the scheduler stops leaves without disturbing the others; checkpoints move
between fused and unfused runs and training continues identically."""

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
from lmtune.schedulers.successive_halving import SuccessiveHalving
from lmtune.trial import Trial, TrialState
from tests.nlp.conftest import DATA

pytestmark = pytest.mark.slow

TINY = {"hidden_size": 32, "num_heads": 2, "num_layers": 2, "ffn_size": 64, "dropout": 0.0}
# Learning rate and schedule, warm-up, weight decay, clipping, seed (initialisation and data order), batch size.
TRIALS = [
    {
        "learning_rate": 3e-3,
        "lr_schedule": "linear",
        "warmup_ratio": 0.1,
        "weight_decay": 0.01,
        "seed": 1,
        "batch_size": 16,
    },
    {
        "learning_rate": 1e-3,
        "lr_schedule": "cosine",
        "warmup_ratio": 0.0,
        "weight_decay": 0.1,
        "seed": 2,
        "batch_size": 12,
        "grad_clip": None,
    },
    {
        "learning_rate": 5e-3,
        "lr_schedule": "constant",
        "warmup_ratio": 0.2,
        "weight_decay": 0.0,
        "seed": 3,
        "batch_size": 16,
        "optimizer": "adamw",
        "beta2": 0.99,
    },
]


@pytest.fixture(scope="module")
def setup() -> Any:
    """A tiny from-config BERT with a tokenizer trained on the slice; evaluations every 2 optimizer steps; one torch
    thread while this module runs (tiny models train fastest so when other processes share the cores)."""
    if not DATA.is_dir():
        pytest.skip(f"the shared data folder is missing at {DATA}; set LMTUNE_SHARED")
    spec = {
        "type": "classification",
        "model": {"architecture": "bert", "vocab_size": 600},
        "data": {
            "root": str(DATA / "sst2"),
            "train": "train.tsv.gz",
            "validation": "dev.tsv.gz",
            "text": "sentence",
            "max_train_examples": 72,
            "max_eval_examples": 24,
        },
        "max_length": 32,
        "eval_every_steps": 2,
        "patience": None,
        "training": {"epochs": 2, **TINY},
    }
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_task(spec, DATA).setup(32)
    torch.set_num_threads(threads)


def _study(tmp: Path, name: str, scheduler: Any = None) -> Any:
    return lmtune.create_study(
        direction="maximize", storage=f"sqlite:///{tmp / name}.db", scheduler=scheduler
    )


def _ask(study: Any, params: dict[str, Any], budget: int | None = None) -> Trial:
    record = study.enqueue(params)
    if budget is not None:
        study.storage.set_trial_system_attr(record.trial_id, "budget", budget)
    trial = study.ask()
    assert trial is not None and trial.params == params
    return trial


def _run_alone(setup: Any, trial: Trial) -> float:
    params = {"epochs": 2, **TINY, **trial.params}
    return TrialRunner(setup, Hyperparameters.from_params(params), trial, params).run()


def _run_fused(
    setup: Any, study: Any, trials: list[Trial], pause: tuple[int, ...] = ()
) -> list[MemberResult]:
    """Run ``trials`` as one group; those numbered in ``pause`` are told PAUSED when they leave."""
    results: list[MemberResult] = []

    def leave(result: MemberResult) -> None:
        results.append(result)
        if result.error is not None:
            raise result.error
        trial = result.trial
        state = TrialState.PAUSED if trial.pause_requested or trial.number in pause else None
        state = TrialState.PRUNED if state is None and trial.should_stop() else state
        study.tell(trial, result.value, state=state)

    group = FusedGroup(setup, on_leave=leave)
    for trial in trials:
        params = {"epochs": 2, **TINY, **trial.params}
        group.add(trial, Hyperparameters.from_params(params), params)
    group.run()
    return results


def _history(trial: Trial) -> list[dict[str, float]]:
    return trial.user_attrs["eval_history"]


def _same(fused: list[dict[str, float]], alone: list[dict[str, float]]) -> None:
    assert [h["step"] for h in fused] == [h["step"] for h in alone]
    for f, a in zip(fused, alone, strict=True):
        assert f["accuracy"] == a["accuracy"], (f, a)
        assert f["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)
        assert f["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, abs=1e-5)


@pytest.fixture(scope="module")
def alone(setup: Any, tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, float]]]:
    """Each trial run alone, as the unfused runner does."""
    study = _study(tmp_path_factory.mktemp("alone"), "alone")
    histories = []
    for params in TRIALS:
        trial = _ask(study, params)
        study.tell(trial, _run_alone(setup, trial))
        histories.append(_history(trial))
    return histories


def test_fused_trials_evaluate_and_report_as_trials_alone(setup: Any, alone: Any, tmp_path: Path) -> None:
    study = _study(tmp_path, "fused")
    trials = [_ask(study, params) for params in TRIALS]
    results = _run_fused(setup, study, trials)
    assert sorted(r.trial.number for r in results) == [0, 1, 2] and all(r.error is None for r in results)
    for k, trial in enumerate(trials):
        _same(_history(trial), alone[k])
        assert study.trials[k].state is TrialState.COMPLETE
        assert study.trials[k].intermediate == {int(h["step"]): h["accuracy"] for h in alone[k]}
    assert (
        len(alone[0]) == 5 and len(alone[1]) == 6
    )  # 72 examples, 2 epochs, batches of 16 and 12, 2 steps apart


def test_a_stopped_trial_leaves_and_the_others_continue_undisturbed(
    setup: Any, alone: Any, tmp_path: Path
) -> None:
    study = _study(
        tmp_path,
        "asha",
        SuccessiveHalving(max_resource=12, min_resource=2, reduction_factor=2, resource="step"),
    )
    trials = [_ask(study, params) for params in TRIALS]
    _run_fused(setup, study, trials)
    states = [r.state for r in study.trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for k, trial in enumerate(trials):
        history = _history(trial)
        if states[k] is TrialState.COMPLETE:
            _same(history, alone[k])
        else:  # stopped early: its evaluations up to then are those of the run alone
            assert len(history) < len(alone[k])
            _same(history, alone[k][: len(history)])


def test_checkpoints_move_between_fused_and_unfused_runs(setup: Any, alone: Any, tmp_path: Path) -> None:
    study = _study(tmp_path, "resume")
    fused_first = _ask(study, TRIALS[0], budget=6)
    alone_first = _ask(study, TRIALS[2], budget=6)
    companion = _ask(study, TRIALS[1])
    # Trial 0 leaves its group at its budget, the other member goes on; trial 1 runs alone to its budget.
    _run_fused(setup, study, [fused_first, companion], pause=(fused_first.number,))
    _run_alone(setup, alone_first)
    study.tell(alone_first, state=TrialState.PAUSED)
    for trial in (fused_first, alone_first):
        assert _history(trial)[-1]["step"] == 6

    unfused = Trial(study, study._resume(fused_first.number, budget=1000))
    assert unfused.resume_from is not None
    study.tell(unfused, _run_alone(setup, unfused))
    fused = Trial(study, study._resume(alone_first.number, budget=1000))
    _run_fused(setup, study, [fused])

    _same(_history(unfused), alone[0])
    _same(_history(fused), alone[2])
    _same(_history(companion), alone[1])
