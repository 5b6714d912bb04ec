"""Define-by-run studies, lmtune beside Optuna in one run: time per trial of TPE, and the best value found.

    .venv/bin/python benchmarks/define_by_run.py                    # both parts (about 2 minutes on 2 cores)
    .venv/bin/python benchmarks/define_by_run.py --part timing --trials 1000
    .venv/bin/python benchmarks/define_by_run.py --part quality --seeds 10 --budget 60

The objective suggests every parameter with ``trial.suggest_*`` (the same code for both libraries: lmtune's
``Trial`` takes Optuna's signatures) on the ``log_categorical`` functions of ``benchmarks/blackbox/``: log-scaled
floats mixed with categoricals. Both libraries keep trials in memory and run through ``study.optimize``.

* timing: milliseconds per trial over a whole run of ``--trials`` trials on ``finetune8`` (8 parameters), and over
  its last 100 trials (the cost per trial at that history size); the objective itself costs microseconds. CPU time
  of this process is the main figure (on a shared machine, wall time also counts other jobs' turns); wall time is
  shown beside it. Each library runs ``--repeats`` times, alternating, and the fastest run of each counts.
* quality: the best value after ``--budget`` trials over ``--seeds`` seeds, for lmtune's default sampler (``auto``),
  lmtune's TPE, Optuna's default TPE and random search (median and mean over seeds, and how many seeds each of
  lmtune's is at least as good as Optuna's TPE).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lmtune  # noqa: E402
from benchmarks.blackbox.peers import _optuna_params  # noqa: E402
from benchmarks.blackbox.tasks import LOG_CATEGORICAL, Task, make_task  # noqa: E402
from lmtune.samplers import RandomSampler, TPESampler  # noqa: E402

TIMING_TASK = "finetune8"
LAST = 100  # trials at the end of a timing run timed on their own


def _objective(task: Task, on_value: Callable[[float], None] | None = None) -> Callable[[Any], float]:
    space = task.search_space()

    def objective(trial: Any) -> float:
        value = task.loss(_optuna_params(trial, space))
        if on_value is not None:
            on_value(value)
        return value

    return objective


def _lmtune_study(method: str, seed: int) -> lmtune.Study:
    if method == "lmtune auto (default)":
        return lmtune.create_study(seed=seed)
    if method == "lmtune TPE":
        return lmtune.create_study(sampler=TPESampler(seed=seed))
    if method == "random":
        return lmtune.create_study(sampler=RandomSampler(seed=seed))
    raise ValueError(method)


def _optuna_study(seed: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))  # in-memory storage


def run(method: str, task: Task, seed: int, n_trials: int) -> tuple[list[float], dict[str, list[float]]]:
    """Values in trial order and, per clock ("wall", "cpu"), the seconds at which each trial's objective returned."""
    values: list[float] = []
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    stamps: dict[str, list[float]] = {name: [] for name in clocks}
    start = {name: clock() for name, clock in clocks.items()}

    def record(value: float) -> None:
        values.append(value)
        for name, clock in clocks.items():
            stamps[name].append(clock() - start[name])

    study = _optuna_study(seed) if method == "Optuna TPE (default)" else _lmtune_study(method, seed)
    start = {name: clock() for name, clock in clocks.items()}
    study.optimize(_objective(task, record), n_trials=n_trials)
    for name, clock in clocks.items():
        stamps[name][-1] = clock() - start[name]  # the last trial's tell counts too
    return values, stamps


def timing(n_trials: int, seed: int, repeats: int) -> str:
    task = make_task(TIMING_TASK, seed)
    methods = ("lmtune TPE", "lmtune auto (default)", "Optuna TPE (default)")
    rows: dict[str, dict[str, tuple[float, float]]] = {m: {} for m in methods}
    best_value = {}
    for _ in range(repeats):
        for method in methods:
            values, stamps = run(method, task, seed, n_trials)
            best_value[method] = min(values)
            for clock, times in stamps.items():
                figures = (1000 * times[-1] / n_trials, 1000 * (times[-1] - times[-LAST - 1]) / LAST)
                known = rows[method].get(clock, figures)
                rows[method][clock] = (min(known[0], figures[0]), min(known[1], figures[1]))
    ref = rows["Optuna TPE (default)"]
    lines = [
        f"| sampler | CPU ms / trial, {n_trials} trials | CPU ms / trial, last {LAST} | wall ms / trial, "
        f"{n_trials} trials | wall ms / trial, last {LAST} | best value | Optuna / this, CPU (whole run, last "
        f"{LAST}) | Optuna / this, wall (whole run, last {LAST}) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method in methods:
        (cpu_all, cpu_last), (wall_all, wall_last) = rows[method]["cpu"], rows[method]["wall"]
        lines.append(
            f"| {method} | {cpu_all:.2f} | {cpu_last:.2f} | {wall_all:.2f} | {wall_last:.2f} | "
            f"{best_value[method]:.3f} | {ref['cpu'][0] / cpu_all:.1f}x, {ref['cpu'][1] / cpu_last:.1f}x | "
            f"{ref['wall'][0] / wall_all:.1f}x, {ref['wall'][1] / wall_last:.1f}x |"
        )
    return "\n".join(lines)


def quality(tasks: list[str], seeds: int, budget: int) -> str:
    methods = ["lmtune auto (default)", "lmtune TPE", "Optuna TPE (default)", "random"]
    lines = [
        f"| task | sampler | median best after {budget} | mean best | seeds at least as good as Optuna TPE |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name in tasks:
        best = {
            m: np.array([min(run(m, make_task(name, s), s, budget)[0]) for s in range(seeds)])
            for m in methods
        }
        reference = best["Optuna TPE (default)"]
        for method in methods:
            wins = (
                ""
                if method == "Optuna TPE (default)"
                else f"{int((best[method] <= reference).sum())} / {seeds}"
            )
            lines.append(
                f"| {name} | {method} | {np.median(best[method]):.3f} | {best[method].mean():.3f} | {wins} |"
            )
    return "\n".join(lines)


def machine() -> str:
    import optuna

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}, Python {platform.python_version()}; "
        f"lmtune {lmtune.__version__}, optuna {optuna.__version__}; load average at the start {load}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=["timing", "quality", "both"], default="both")
    parser.add_argument("--trials", type=int, default=1000, help="trials of the timing run")
    parser.add_argument(
        "--repeats", type=int, default=1, help="timing runs of each sampler (the fastest counts)"
    )
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the quality comparison")
    parser.add_argument("--budget", type=int, default=60, help="trials per seed in the quality comparison")
    parser.add_argument("--tasks", nargs="+", default=list(LOG_CATEGORICAL))
    args = parser.parse_args(argv)
    logging.getLogger("lmtune").setLevel(logging.WARNING)
    print(f"Machine: {machine()}\n")
    if args.part in ("timing", "both"):
        print(f"### Time per define-by-run trial ({TIMING_TASK}, in-memory storage)\n")
        print(timing(args.trials, seed=0, repeats=args.repeats), "\n", flush=True)
    if args.part in ("quality", "both"):
        print(f"### Best value after {args.budget} define-by-run trials, {args.seeds} seeds\n")
        print(quality(args.tasks, args.seeds, args.budget))


if __name__ == "__main__":
    main()
