"""The training loop on tiny from-config models and real data slices: it learns, obeys the scheduler, resumes
exactly, survives out-of-memory errors and saves a best model that reloads with the same score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from nlp_tasks import TINY, trec_task

import lmtune
from lmtune.checkpoints import directory_size
from lmtune.history import TrialHistory
from lmtune.nlp import load_task
from lmtune.nlp.checkpoint import BEST, LAST, load_checkpoint
from lmtune.nlp.hyperparameters import Hyperparameters, apply_to_optimizer, lr_factor, make_optimizer
from lmtune.nlp.training import MEGA_BATCH, evaluate_model, length_grouped
from lmtune.schedulers.base import Action, Decision, Scheduler, TrialStart
from lmtune.trial import TrialRecord, TrialState


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """One torch thread: tiny models gain nothing from two, and lose a lot when other processes share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class StopAfterFirstReport(Scheduler):
    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        return Decision(Action.STOP, "test")


class PauseAtOneThenPromote(Scheduler):
    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        return Decision(Action.PAUSE, "rung 1") if trial.last_step == 1 else Decision()

    def next_trial(self, history: TrialHistory) -> TrialStart:
        paused = [r for r in history if r.state is TrialState.PAUSED]
        return TrialStart(resume_number=paused[0].number) if paused else TrialStart()


def _run(
    spec: dict[str, Any], n_trials: int = 1, scheduler: Scheduler | None = None, task: Any = None
) -> Any:
    task = task or load_task(spec, Path("."))
    study = lmtune.create_study(direction=task.direction, scheduler=scheduler)
    study.optimize(task, n_trials=n_trials)
    return task, study


def test_training_reduces_the_loss_and_reports_each_epoch(data_dir: Path) -> None:
    _, study = _run(trec_task(data_dir, epochs=3))
    record = study.trials[0]
    assert record.state is TrialState.COMPLETE, record.failure_reason
    history = record.user_attrs["eval_history"]
    assert sorted(record.intermediate) == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert record.value == max(record.intermediate.values()) > 0.3  # above the majority class share


def test_a_stopped_trial_stops_at_once(data_dir: Path) -> None:
    _, study = _run(trec_task(data_dir, epochs=3), scheduler=StopAfterFirstReport())
    record = study.trials[0]
    assert record.state is TrialState.PRUNED and sorted(record.intermediate) == [1]


def test_a_paused_trial_resumes_to_the_same_state(data_dir: Path) -> None:
    spec = trec_task(data_dir, epochs=2, dropout=0.2)
    task, straight = _run(spec)
    _, paused = _run(spec, n_trials=2, scheduler=PauseAtOneThenPromote(), task=task)
    assert [r.state for r in paused.trials] == [TrialState.COMPLETE]
    assert paused.trials[0].intermediate == pytest.approx(straight.trials[0].intermediate, abs=1e-9)
    a, _ = load_checkpoint(Path(straight.trials[0].checkpoint_dir) / BEST)
    b, meta = load_checkpoint(Path(paused.trials[0].checkpoint_dir) / BEST)
    assert meta["report_step"] == max(paused.trials[0].intermediate, key=paused.trials[0].intermediate.get)
    assert all(torch.allclose(a["model"][k], b["model"][k], atol=1e-6) for k in a["model"])


def test_a_finished_trial_keeps_only_its_best_weights(data_dir: Path) -> None:
    """No optimizer state stays behind once a trial is finished and will not be resumed: a trial run straight
    never writes ``last/``, and a paused one that was promoted and finished removes its own."""
    spec = trec_task(data_dir, epochs=2)
    task, straight = _run(spec)
    _, paused = _run(spec, n_trials=2, scheduler=PauseAtOneThenPromote(), task=task)
    for study in (straight, paused):
        folder = Path(study.trials[0].checkpoint_dir)
        assert sorted(p.name for p in folder.iterdir()) == [BEST]
        tensors, _ = load_checkpoint(folder / BEST)
        assert set(tensors) == {"model"}
        weights = sum(t.numel() * t.element_size() for t in tensors["model"].values())
        assert directory_size(folder) < 1.1 * weights + 100_000  # one model, not three


def test_a_paused_trial_keeps_what_its_resume_needs(data_dir: Path) -> None:
    task, study = _run(trec_task(data_dir, epochs=2), scheduler=PauseAtOneThenPromote())
    record = study.trials[0]
    assert record.state is TrialState.PAUSED
    tensors, meta = load_checkpoint(Path(record.checkpoint_dir) / LAST)
    assert meta["progress"]["epoch"] == 1 and tensors["optimizer"]["state"]
    assert (Path(record.checkpoint_dir) / BEST).is_dir()


def test_a_stopped_trial_writes_no_checkpoint(data_dir: Path) -> None:
    _, study = _run(trec_task(data_dir, epochs=3), scheduler=StopAfterFirstReport())
    assert study.trials[0].state is TrialState.PRUNED and study.trials[0].checkpoint_dir is None


def test_resumed_optimizer_takes_the_new_hyperparameters() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    old = make_optimizer(model, Hyperparameters(learning_rate=1e-3, weight_decay=0.1))
    model(torch.ones(2, 4)).sum().backward()
    old.step()
    new = make_optimizer(model, Hyperparameters(learning_rate=5e-4, weight_decay=0.0))
    new.load_state_dict(old.state_dict())
    assert new.param_groups[0]["lr"] == 1e-3  # loading restores the old values ...
    apply_to_optimizer(new, Hyperparameters(learning_rate=5e-4, weight_decay=0.0))
    assert [g["lr"] for g in new.param_groups] == [5e-4, 5e-4]  # ... until the trial's own are applied
    assert [g["weight_decay"] for g in new.param_groups] == [0.0, 0.0]
    assert len(new.state) == len(old.state) > 0
    decayed = make_optimizer(model, Hyperparameters(weight_decay=0.1)).param_groups
    assert [len(g["params"]) for g in decayed] == [1, 3] and decayed[1][
        "weight_decay"
    ] == 0.0  # no decay on bias/norm


@pytest.mark.parametrize("schedule", ["linear", "cosine", "exponential", "constant"])
def test_learning_rate_schedules_warm_up_then_decay(schedule: str) -> None:
    factors = [lr_factor(s, 100, 10, schedule, 0.01) for s in range(100)]
    assert factors[:10] == sorted(factors[:10]) and factors[9] < 1
    assert factors[10] == pytest.approx(1.0)
    end = {"linear": 1 / 90, "cosine": 0.0003, "exponential": 0.01 ** (89 / 90), "constant": 1.0}[schedule]
    assert factors[-1] == pytest.approx(end, abs=1e-4)  # the last step is 89/90 of the way after warm-up


def _oom_above(limit: int | None):
    """A forward hook that raises a CUDA out-of-memory error for micro-batches above ``limit`` (None: always)."""

    def hook(module: torch.nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        if module.training and (limit is None or kwargs["input_ids"].shape[0] > limit):
            raise torch.OutOfMemoryError("CUDA out of memory (raised by the test)")

    return hook


def test_out_of_memory_halves_the_micro_batch_and_keeps_the_result(data_dir: Path) -> None:
    spec = trec_task(data_dir, epochs=1, dropout=0.0)  # dropout masks would differ with the micro-batch
    task, plain = _run(spec)
    build = task.build

    def build_with_limit(hp: Hyperparameters, max_length: int) -> torch.nn.Module:
        model = build(hp, max_length)
        model.register_forward_pre_hook(_oom_above(8), with_kwargs=True)
        return model

    task.build = build_with_limit
    _, limited = _run(spec, task=task)
    record = limited.trials[0]
    assert record.state is TrialState.COMPLETE
    loss_plain = plain.trials[0].user_attrs["eval_history"][0]["loss"]
    assert record.user_attrs["eval_history"][0]["loss"] == pytest.approx(loss_plain, rel=1e-4)


def test_out_of_memory_at_one_example_fails_the_trial_and_the_study_goes_on(data_dir: Path) -> None:
    task = load_task(trec_task(data_dir, epochs=1), Path("."))
    task.build = _always_oom(task.build)
    _, study = _run({}, n_trials=2, task=task)
    assert [r.state for r in study.trials] == [TrialState.FAILED] * 2
    assert "out of memory" in study.trials[0].failure_reason


def _always_oom(build: Any) -> Any:
    def wrapped(hp: Hyperparameters, max_length: int) -> torch.nn.Module:
        model = build(hp, max_length)
        model.register_forward_pre_hook(_oom_above(None), with_kwargs=True)
        return model

    return wrapped


def test_the_saved_best_model_reloads_and_reproduces_its_metric(data_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    spec = {**trec_task(data_dir, epochs=2), "output_dir": str(tmp_path / "best")}
    task, study = _run(spec)
    summary = task.finalize(study)
    assert summary["validation"]["accuracy"] == pytest.approx(study.best_value)
    assert 0 <= summary["test"]["accuracy"] <= 1 and summary["split_sizes"]["test"] == 500
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "best")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "best")
    examples = task.task_type.encode(task.splits.validation, tokenizer, 32)
    scores = evaluate_model(task.task_type, model, examples, tokenizer, torch.device("cpu"))
    assert scores["accuracy"] == pytest.approx(study.best_value)
    assert (tmp_path / "best" / "lmtune_result.json").is_file()


def test_step_reports_and_language_model_perplexity(data_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    spec = {
        "type": "causal-lm",
        "model": {"architecture": "gpt2", "vocab_size": 400},
        "data": {
            "root": str(data_dir / "tinyshakespeare"),
            "train": "input.txt.gz",
            "max_train_examples": 1500,
            "max_eval_examples": 200,
        },
        "max_length": 64,
        "eval_every_steps": 10,
        "output_dir": str(tmp_path / "lm"),
        "training": {
            "epochs": 2,
            "max_steps": 30,
            "learning_rate": 3e-3,
            "batch_size": 16,
            "gradient_checkpointing": True,
            **TINY,
        },
    }
    task, study = _run(spec)
    record = study.trials[0]
    assert task.direction == "minimize" and sorted(record.intermediate) == [10, 20, 30]
    assert (
        record.intermediate[30] < record.intermediate[10] < 400
    )  # perplexity falls below the vocabulary size
    summary = task.finalize(study)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "lm")
    scores = evaluate_model(
        task.task_type, reloaded, task.encoded("validation", 64), task.tokenizer, torch.device("cpu")
    )
    assert (
        scores["perplexity"]
        == pytest.approx(study.best_value, rel=1e-4)
        == summary["validation"]["perplexity"]
    )


def test_translation_with_lora_trains_only_the_adapters(data_dir: Path) -> None:
    spec = {
        "type": "translation",
        "model": {"architecture": "bart", "vocab_size": 800},
        "data": {
            "root": str(data_dir / "multi30k_en_de"),
            "train": "validation.jsonl.gz",
            "source": "en",
            "target": "de",
            "max_eval_examples": 24,
        },
        "max_length": 32,
        "generate_max_length": 12,
        "training": {
            "epochs": 1,
            "max_steps": 6,
            "learning_rate": 3e-3,
            "batch_size": 16,
            "finetune": "lora",
            "lora_r": 4,
            **TINY,
        },
    }
    task, study = _run(spec)
    record = study.trials[0]
    assert record.state is TrialState.COMPLETE, record.failure_reason
    assert task.metric == "bleu" and 0 <= record.value <= 100
    assert "loss" in record.user_attrs["eval_history"][0]
    best, _ = load_checkpoint(Path(record.checkpoint_dir) / "best")
    assert best["model"] and all("lora_" in k for k in best["model"])


@pytest.mark.parametrize("curriculum", ["shortest", "easiest"])
def test_a_curriculum_orders_the_first_epoch_only(data_dir: Path, curriculum: str) -> None:
    from lmtune.nlp.training import TrialRunner

    task = load_task(trec_task(data_dir), Path("."))
    hp = Hyperparameters.from_params({**task.spec.training, "curriculum": curriculum})
    study = lmtune.create_study(direction=task.direction)
    runner = TrialRunner(task.setup(32), hp, study.ask(), dict(task.spec.training))
    runner.model = task.build(hp, 32)
    first, second = runner._epoch_order(0), runner._epoch_order(1)
    assert sorted(first) == sorted(second) == list(range(len(task.splits.train)))
    train = runner.setup.train
    if curriculum == "shortest":
        lengths = [len(train[i]["input_ids"]) for i in first]
        assert lengths == sorted(lengths)
    else:
        batch = [train[i] for i in first[:8]] + [train[i] for i in first[-8:]]
        from lmtune.nlp.task_types import collate

        runner.model.eval()
        with torch.no_grad():
            losses, _ = task.task_type.example_losses(
                runner.model, collate(batch, task.tokenizer.pad_token_id, torch.device("cpu"))
            )
        assert losses[:8].max() <= losses[8:].min()  # easiest (lowest loss) first
    assert second != first


def test_length_grouped_batches_pad_less_and_keep_every_example_once() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 60, size=1000).tolist()
    order = rng.permutation(1000).tolist()
    grouped = length_grouped(order, lengths, 32, np.random.default_rng(1))
    assert sorted(grouped) == list(range(1000))
    assert grouped == length_grouped(order, lengths, 32, np.random.default_rng(1))  # seeded
    assert grouped != length_grouped(order, lengths, 32, np.random.default_rng(2))

    def padded(o: list[int]) -> int:
        return sum(max(lengths[i] for i in o[b : b + 32]) * len(o[b : b + 32]) for b in range(0, len(o), 32))

    assert padded(grouped) < 0.7 * padded(order)
    tail = grouped[992:]  # 1000 = 31 full batches + 8: the partial batch stays last
    assert len(tail) == 8 and set(tail) <= set(order[MEGA_BATCH * 32 * 3 :])
