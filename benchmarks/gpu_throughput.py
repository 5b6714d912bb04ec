"""Fused and packed multi-trial training against one trial at a time, in aggregate optimizer steps per second.

    .venv/bin/python benchmarks/gpu_throughput.py            # CPU part always; GPU part where CUDA is present
    .venv/bin/python benchmarks/gpu_throughput.py --study    # a whole SST-2 study vs Optuna + Trainer (gpu_study.py)

CPU: 8 tiny from-config BERT classifiers (2 layers, width 32) on an SST-2 slice tokenised with the bundled MiniLM
tokenizer, batch 32: trained one after another (a plain model and torch AdamW each, as the runner does) and as one
fused group. GPU: MiniLM-L6 on SST-2 at batch 32 (bf16 autocast) — one process, N processes sharing the GPU, and
fused groups of 4, 8, 16 and 32 (``--groups``), with peak GPU memory per trial. Every trial has its own learning
rate, weight decay, seed and data order.
With ``--study`` it runs only the study comparison of ``gpu_study.py`` (``--device cpu --tiny``: a CPU smoke run).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import multiprocessing as mp
import os
import platform
import time
from typing import Any

import gpu_study
import torch
import transformers
from gpu_study import minilm_dir
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from lmtune.nlp.fused import FusedModel, Member, MemberOptimizer, stack_batches
from lmtune.nlp.task_types import collate, task_type_for

SST2 = gpu_study.SST2
TASK = task_type_for("classification", [0, 1])


def sst2_examples(n: int, max_length: int) -> list[dict[str, Any]]:
    with gzip.open(SST2 / "train.tsv.gz", "rt") as f:
        rows = list(itertools.islice(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE), n))
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    ids = tokenizer([r["sentence"] for r in rows], truncation=True, max_length=max_length)["input_ids"]
    return [{"input_ids": i, "labels": int(r["label"])} for i, r in zip(ids, rows, strict=True)]


def tiny_bert(seed: int) -> torch.nn.Module:
    config = AutoConfig.for_model(
        "bert",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=30522,
        max_position_embeddings=64,
        num_labels=2,
    )
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(config)


def minilm(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(str(minilm_dir()), num_labels=2)


def batches(
    examples: list[dict[str, Any]], seed: int, size: int, device: torch.device
) -> list[dict[str, Any]]:
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed)).tolist()
    return [
        collate([examples[i] for i in order[s : s + size]], 0, device)
        for s in range(0, len(order) - size + 1, size)
    ]


def decays(model: torch.nn.Module) -> dict[str, bool]:
    return {n: p.ndim >= 2 and "norm" not in n.lower() for n, p in model.named_parameters()}


def train_alone(build: Any, seed: int, data: list[dict[str, Any]], steps: int, device: torch.device) -> float:
    """Steps per second of one trial trained alone (plain model, torch AdamW, clipping)."""
    model = build(seed).to(device)
    named = list(model.named_parameters())
    d = decays(model)
    opt = torch.optim.AdamW(
        [
            {"params": [p for n, p in named if d[n]], "weight_decay": 0.01},
            {"params": [p for n, p in named if not d[n]], "weight_decay": 0.0},
        ],
        lr=1e-3 * (1 + seed % 4),
        fused=device.type == "cuda",
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.train()

    def step(i: int) -> None:
        with autocast:
            loss = TASK.loss(model, data[i % len(data)])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return timed_steps(step, steps, device)


def train_fused(
    build: Any, k: int, examples: list[dict[str, Any]], steps: int, size: int, device: torch.device
) -> float:
    """Aggregate steps per second of ``k`` trials as one fused group."""
    members = [Member(s, 0.1, MemberOptimizer(weight_decay=0.01 * (s % 3), grad_clip=1.0)) for s in range(k)]
    models = [build(s) for s in range(k)]
    engine = FusedModel(models, members, "adamw", decays(models[0]), TASK.example_losses, device)
    del models
    data = [batches(examples, s, size, device) for s in range(k)]
    lrs = [1e-3 * (1 + s % 4) for s in range(k)]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step(i: int) -> None:
        with autocast:
            engine.train_step(stack_batches([d[i % len(d)] for d in data], 0), lrs)

    return k * timed_steps(step, steps, device)


def timed_steps(step: Any, steps: int, device: torch.device) -> float:
    """Steps per second of ``step(i)`` over ``steps`` calls, after one untimed warm-up call."""
    step(0)
    sync(device)
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    sync(device)
    return steps / (time.perf_counter() - start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cpu_part(trials: int, steps: int) -> list[tuple[str, float, float]]:
    device = torch.device("cpu")
    examples = sst2_examples(1024, 64)
    start = time.perf_counter()
    rates = [
        train_alone(tiny_bert, s, batches(examples, s, 32, device), steps, device) for s in range(trials)
    ]
    alone_wall = time.perf_counter() - start
    alone = trials * steps / sum(steps / r for r in rates)
    start = time.perf_counter()
    fused = train_fused(tiny_bert, trials, examples, steps, 32, device)
    fused_wall = time.perf_counter() - start
    return [
        (f"{trials} trials one after another", alone, alone_wall),
        (f"{trials} trials fused", fused, fused_wall),
    ]


def _peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30


def _packed_worker(seed: int, steps: int, queue: Any) -> None:
    device = torch.device("cuda")
    examples = sst2_examples(2048, 64)
    rate = train_alone(minilm, seed, batches(examples, seed, 32, device), steps, device)
    queue.put((rate, _peak_gib()))


def gpu_part(steps: int, groups: list[int], packed: list[int]) -> list[tuple[str, float, float, float]]:
    """Rows of (configuration, aggregate steps/s, wall s, peak GPU memory per trial in GiB)."""
    device = torch.device("cuda")
    examples = sst2_examples(4096, 64)
    rows = []
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    rate = train_alone(minilm, 0, batches(examples, 0, 32, device), steps, device)
    rows.append(("MiniLM, 1 process", rate, time.perf_counter() - start, _peak_gib()))
    torch.cuda.empty_cache()
    ctx = mp.get_context("spawn")
    for n in packed:
        queue = ctx.Queue()
        start = time.perf_counter()
        procs = [ctx.Process(target=_packed_worker, args=(s, steps, queue)) for s in range(n)]
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        total, memory = sum(r for r, _ in results), max(m for _, m in results)
        rows.append((f"MiniLM, {n} processes packed", total, time.perf_counter() - start, memory))
    for k in groups:
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            rate = train_fused(minilm, k, examples, steps, 32, device)
        except torch.OutOfMemoryError:
            print(f"fused group of {k}: out of GPU memory", flush=True)
            break
        rows.append((f"MiniLM, fused group of {k}", rate, time.perf_counter() - start, _peak_gib() / k))
        torch.cuda.empty_cache()
    return rows


def print_table(title: str, rows: list[tuple[Any, ...]]) -> None:
    base = rows[0][1]
    memory = len(rows[0]) > 3
    extra = " peak GPU memory per trial GiB |" if memory else ""
    print(f"\n{title}\n| configuration | optimizer steps/s (all trials) | wall s | vs first row |{extra}")
    print("| --- | ---: | ---: | ---: |" + (" ---: |" if memory else ""))
    for name, rate, wall, *rest in rows:
        cells = f" {rest[0]:.2f} |" if memory else ""
        print(f"| {name} | {rate:.1f} | {wall:.1f} | {rate / base:.2f}x |{cells}", flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per trial (CPU)")
    parser.add_argument("--gpu-steps", type=int, default=200, help="optimizer steps per trial (GPU)")
    parser.add_argument("--groups", default="4,8,16,32", help="fused group sizes on the GPU")
    parser.add_argument("--packed", default="4,8", help="processes sharing the GPU, one trial each")
    parser.add_argument("--study", action="store_true", help="run the SST-2 study comparison instead")
    gpu_study.add_study_arguments(parser)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}, "
        f"{platform.machine()} with {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    )
    if args.study:
        gpu_study.run_study(gpu_study.setup_from_args(args), gpu_study.sides_from_args(args))
        return
    print_table(
        f"CPU: {args.trials} tiny BERT classifiers, SST-2, batch 32, {args.steps} steps each",
        cpu_part(args.trials, args.steps),
    )
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
        print_table(
            f"GPU: MiniLM-L6 on SST-2, batch 32, bf16 autocast, {args.gpu_steps} steps each",
            gpu_part(args.gpu_steps, _ints(args.groups), _ints(args.packed)),
        )
    else:
        print("\nno CUDA device: the GPU part (processes packed, fused groups) was not run")


if __name__ == "__main__":
    main()
