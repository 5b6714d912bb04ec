"""The Trainer integration with a real ``Trainer`` on a tiny BERT built from a config."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import lmtune
from lmtune.exceptions import ConfigError
from lmtune.integrations.hf import BEST_MODEL, LmtuneTrainerCallback, training_arguments, tune
from lmtune.schedulers import MedianStopping
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB = 40
MAX_STEPS = 12
EVAL_STEPS = 4


class TokenTask(torch.utils.data.Dataset):
    """Label 1 when token 7 occurs in the sequence: learnable by a tiny model in a few dozen steps."""

    def __init__(self, n: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(8, VOCAB, (n, 12), generator=generator)
        self.labels = torch.randint(0, 2, (n,), generator=generator)
        self.ids[self.labels == 1, 3] = 7

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.ids[i],
            "attention_mask": torch.ones(12, dtype=torch.long),
            "labels": self.labels[i],
        }


TRAIN, EVAL = TokenTask(192, 0), TokenTask(32, 1)


def model_init(params: dict | None = None) -> BertForSequenceClassification:
    dropout = (params or {}).get("dropout", 0.1)
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        hidden_dropout_prob=dropout,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def accuracy(prediction) -> dict[str, float]:
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


BASE_ARGS = TrainingArguments(
    output_dir="unused",
    max_steps=MAX_STEPS,
    eval_strategy="steps",
    eval_steps=EVAL_STEPS,
    save_strategy="no",
    per_device_train_batch_size=16,
    per_device_eval_batch_size=64,
    learning_rate=1e-3,
    report_to="none",
    logging_strategy="no",
    disable_tqdm=True,
    use_cpu=True,
    seed=0,
)


def factory(params: dict) -> Trainer:
    return Trainer(
        model_init=lambda: model_init(params),
        args=training_arguments(BASE_ARGS, params),
        train_dataset=TRAIN,
        eval_dataset=EVAL,
        compute_metrics=accuracy,
    )


SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 3e-2, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3},
}


class StopAtStep(Scheduler):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_report(self, trial, history) -> Decision:
        return Decision(Action.STOP, "test") if trial.last_step >= self.step else CONTINUE


@pytest.mark.slow
def test_tune_runs_a_study_and_keeps_only_the_best_model(tmp_path: Path) -> None:
    objective = lambda metrics: metrics["eval_accuracy"]  # noqa: E731
    best = tune(
        factory,
        SPACE,
        n_trials=3,
        direction="maximize",
        compute_objective=objective,
        seed=0,
        output_dir=tmp_path,
    )
    study = best.run_summary
    assert len(study.trials) == 3
    for record in study.trials:
        assert record.state is lmtune.TrialState.COMPLETE
        assert sorted(record.intermediate) == list(range(EVAL_STEPS, MAX_STEPS + 1, EVAL_STEPS))
        assert record.value == record.intermediate[MAX_STEPS]
    assert best.objective == max(r.value for r in study.trials)
    assert best.hyperparameters == study.best_params
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == [f"trial_{int(best.run_id):05d}"]
    model_dir = Path(study.best_trial.user_attrs["model_dir"])
    assert model_dir == tmp_path / folders[0] / BEST_MODEL
    reloaded = BertForSequenceClassification.from_pretrained(model_dir)
    assert reloaded.config.hidden_dropout_prob == pytest.approx(best.hyperparameters["dropout"])


@pytest.mark.slow
def test_the_scheduler_stops_training_through_the_callback(tmp_path: Path) -> None:
    factory_trainers: list[Trainer] = []

    def tracking_factory(params: dict) -> Trainer:
        factory_trainers.append(factory(params))
        return factory_trainers[-1]

    study = lmtune.create_study(
        seed=0, space=SPACE, scheduler=StopAtStep(2 * EVAL_STEPS), checkpoint_root=tmp_path
    )
    assert tune(tracking_factory, SPACE, n_trials=1, study=study) is None  # no trial completed
    (record,) = study.trials
    assert record.state is lmtune.TrialState.PRUNED
    assert sorted(record.intermediate) == [EVAL_STEPS, 2 * EVAL_STEPS]
    assert factory_trainers[0].state.global_step == 2 * EVAL_STEPS  # stopped, not run to MAX_STEPS
    assert list(tmp_path.iterdir()) == []  # a pruned trial keeps no files


@pytest.mark.slow
def test_median_stopping_prunes_in_a_define_by_run_search_and_memory_is_released(tmp_path: Path) -> None:
    models: list[weakref.ref] = []

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", 1e-6, 3e-2, log=True)}

    def factory_keeping_refs(params: dict) -> Trainer:
        def init():
            model = model_init(params)
            models.append(weakref.ref(model))
            return model

        return Trainer(
            model_init=init,
            args=training_arguments(BASE_ARGS, params),
            train_dataset=TRAIN,
            eval_dataset=EVAL,
        )

    best = tune(
        factory_keeping_refs,
        hp_space,
        n_trials=4,
        seed=3,
        output_dir=tmp_path,
        scheduler=MedianStopping(min_resource=EVAL_STEPS, n_startup_trials=2),
    )
    states = [r.state for r in best.run_summary.trials]
    assert lmtune.TrialState.PRUNED in states and lmtune.TrialState.COMPLETE in states
    gc.collect()
    alive = [ref for ref in models if ref() is not None]
    assert alive == []  # no trial's model outlives its trial


def test_callback_uses_default_objective_and_validates_its_step_unit() -> None:
    study = lmtune.create_study(seed=0)
    trial = study.ask()
    callback = LmtuneTrainerCallback(trial)

    class State:
        global_step, epoch = 4, 0.5

    class Control:
        should_training_stop = False

    callback.on_evaluate(
        BASE_ARGS, State(), Control(), metrics={"eval_loss": 0.7, "eval_runtime": 1.0, "epoch": 0.5}
    )
    assert callback.last_value == 0.7
    assert study.trials[0].intermediate == {4: 0.7}
    with pytest.raises(ConfigError, match="step"):
        LmtuneTrainerCallback(trial, step="batch")
    with pytest.raises(ConfigError, match="n_trials"):
        tune(factory, SPACE, n_trials=0)


def test_training_arguments_sets_known_fields_and_casts_them() -> None:
    args = training_arguments(
        BASE_ARGS, {"learning_rate": 0.01, "per_device_train_batch_size": 8.0, "dropout": 0.2}
    )
    assert args.learning_rate == 0.01 and args.per_device_train_batch_size == 8
    assert isinstance(args.per_device_train_batch_size, int)
    assert BASE_ARGS.learning_rate == 1e-3


@pytest.mark.gpu
def test_gpu_memory_is_released_after_the_search(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    before = torch.cuda.memory_allocated()

    def gpu_factory(params: dict) -> Trainer:
        args = training_arguments(BASE_ARGS, params, use_cpu=False)
        return Trainer(
            model_init=lambda: model_init(params), args=args, train_dataset=TRAIN, eval_dataset=EVAL
        )

    tune(gpu_factory, SPACE, n_trials=2, seed=0, output_dir=tmp_path)
    assert torch.cuda.memory_allocated() <= before + 1024**2  # nothing of the trials stays on the GPU


def test_hyperparameter_search_tunes_an_existing_trainer_built_with_model_init(
    tmp_path: Path, artifacts: Path
) -> None:
    from lmtune.integrations.hf import hyperparameter_search

    seen: list[float] = []

    def init(trial):  # transformers calls it with None when the Trainer is built
        dropout = 0.1 if trial is None else trial.params["dropout"]
        seen.append(dropout)
        return model_init({"dropout": dropout})

    trainer = Trainer(
        model_init=init,
        args=training_arguments(BASE_ARGS, {"output_dir": str(tmp_path)}),
        train_dataset=TRAIN,
        eval_dataset=EVAL,
        compute_metrics=accuracy,
    )

    def hp_space(trial):
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-2, log=True),
            "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        }

    best = hyperparameter_search(
        trainer,
        hp_space=hp_space,
        n_trials=2,
        direction="maximize",
        compute_objective=lambda metrics: metrics["eval_accuracy"],
        seed=0,
    )
    assert best is not None and set(best.hyperparameters) == {"learning_rate", "dropout"}
    study = best.run_summary
    assert best.objective == study.best_value and best.run_id == str(study.best_trial.number)
    assert [r.state for r in study.trials] == [lmtune.TrialState.COMPLETE] * 2
    assert {r.params["dropout"] for r in study.trials} <= set(seen)  # model_init got each trial
    assert (Path(study.best_trial.user_attrs["model_dir"]) / "config.json").is_file()
    assert Path(study.best_trial.user_attrs["model_dir"]).is_relative_to(tmp_path)
    (artifacts / "hf-hyperparameter-search.txt").write_text(
        f"{best!r}\n".replace(repr(study), "<lmtune study>")
    )
    with pytest.raises(ConfigError, match="model_init"):
        hyperparameter_search(Trainer(model=model_init(), args=BASE_ARGS, eval_dataset=EVAL), n_trials=1)
