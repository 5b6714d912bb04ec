"""Multi-fidelity benchmark: lmtune's schedulers against Optuna, Syne Tune (Hyper-Tune, MOBSTER, DyHPO), SMAC3,
NePS PriorBand, DEHB and random search, on a simulated clock (recorded SST-2 fine-tuning curves, multi-fidelity
Hartmann functions, LCBench through the YAHPO Gym surrogate), with 1 and 8 workers.

    python benchmarks/multifidelity/run.py --venvs DIR            # 20 seeds, all tasks, 1 and 8 workers
    python benchmarks/multifidelity/run.py --venvs DIR --seeds 5 --tasks sst2 --workers 1
    python benchmarks/multifidelity/run.py --tables-only           # print the tables from the stored runs

Each peer library runs in its own virtual environment ``DIR/<name>`` (``dehb``, ``smac``, ``synetune``, ``neps``;
each with lmtune's dependencies importable), lmtune and Optuna in this interpreter. Every run is stored as JSON
under ``--out`` (``benchmarks/results/multifidelity``) and never recomputed, so a rerun only adds what is missing
(a run stored with other settings than the method has now, e.g. an earlier ``auto``, counts as missing);
runs are taken in rounds of ``--chunk`` seeds so that a cut-short run still gives every method the same seeds.

Protocol (per task and worker count): a method's score is the best value of a configuration trained to the full
``max_resource`` within the first ``--budget`` full-training equivalents of epochs (15 by default); its regret is
the distance to the best recorded value. Printed: mean and median regret over the seeds, the number of fully
trained configurations inside the budget, and a two-sided Wilcoxon signed-rank test of each method's regrets
against lmtune's default on the same seeds; then the budget until the returned configuration comes within the
task's tolerance (1 accuracy point; 0.25 on Hartmann), mean regret on the way, the speed-up over random search
(DEHB paper), the recorded test metric of the returned configuration, and a Mann-Whitney test against Hyperband on
the area under the log-regret curve; and the mean regret summed over the tasks.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# This folder (the task and peer modules) and the repository root (the lmtune beside the benchmarks) come first.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

from peers import PEERS  # noqa: E402
from replay import current_run, replay_and_store, result_path  # noqa: E402
from significance import rank_test  # noqa: E402
from tasks import TASKS, TEST_METRIC  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT = next(iter(PEERS))
REFERENCE = "lmtune Hyperband"
RANDOM = "random search (full budget)"
DEFAULT_TASKS = [t for t in TASKS if t != "sst2-prior"] + ["sst2-prior"]


def interpreter(method: str, venvs: Path | None) -> str | None:
    venv = PEERS[method].venv
    if venv is None:
        return sys.executable
    if venvs is None:
        return None
    python = venvs / venv / "bin" / "python"
    return str(python) if python.exists() else None


def missing(out: Path, task: str, workers: int, budget: int, method: str, seeds: list[int]) -> list[int]:
    return [
        s for s in seeds if current_run(result_path(out, task, workers, budget, method, s), method) is None
    ]


def run_group(python: str, method: str, runs: list[tuple[str, int, int]], budget: int, out: Path) -> str:
    """Replay ``runs`` of one method: in this process for lmtune and Optuna, else in the peer's interpreter (one
    process for all its runs, so its imports are paid once). Returns the last line printed or the error."""
    if python == sys.executable:
        replay_and_store(method, runs, budget, out)
        return f"{method}: {len(runs)} runs"
    command = [
        python,
        str(HERE / "replay.py"),
        "--method",
        method,
        "--budget",
        str(budget),
        "--out",
        str(out),
    ]
    command += ["--runs", *(f"{t}:{w}:{s}" for t, w, s in runs)]
    root = str(HERE.parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return f"FAILED {method}: {done.stderr.strip().splitlines()[-1:]}"
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def load(out: Path, task: str, workers: int, budget: int, method: str, seeds: list[int]) -> dict[int, dict]:
    """The stored runs of ``method`` with its present settings (stale runs are left out until recomputed)."""
    runs = {}
    for seed in seeds:
        run = current_run(result_path(out, task, workers, budget, method, seed), method)
        if run is not None:
            runs[seed] = run
    return runs


def regret_curve(run: dict) -> np.ndarray:
    """Regret after each epoch of the budget (inf before the first fully trained configuration)."""
    sign = -1.0 if run["direction"] == "maximize" else 1.0
    regret = np.full(run["budget"] * run["unit"], np.inf)
    for used, value, _ in run["incumbents"]:
        regret[used - 1 :] = max(0.0, sign * (value - run["best_value"]))
    return regret


def final_regret(run: dict) -> float:
    """Protocol score as regret; no fully trained configuration counts as the worst value seen on the task."""
    last = regret_curve(run)[-1]
    return float(last) if np.isfinite(last) else np.nan


def budget_to(regret: np.ndarray, target: float, unit: int) -> float:
    """Full trainings used until regret <= target (the whole budget when never)."""
    hit = np.nonzero(regret <= target + 1e-12)[0]
    return (hit[0] + 1) / unit if len(hit) else len(regret) / unit


def speedup(mean_regret: np.ndarray, random_regret: np.ndarray) -> float:
    """DEHB's speed-up over random search: budget RS needs for its final mean regret / budget the method needs."""
    final = random_regret[-1]
    needs_rs = np.nonzero(random_regret <= final + 1e-12)[0][0] + 1
    hit = np.nonzero(mean_regret <= final + 1e-12)[0]
    return needs_rs / (hit[0] + 1) if len(hit) else needs_rs / len(mean_regret) * 0.999


def area(regret: np.ndarray) -> float:
    """Mean log-regret over the budget (finite stand-in for 'nothing returned yet': the worst finite regret)."""
    finite = np.where(np.isfinite(regret), regret, np.nan)
    worst = np.nanmax(finite) if np.any(np.isfinite(finite)) else 1.0
    return float(np.mean(np.log10(np.nan_to_num(finite, nan=worst) + 1e-4)))


def versus(mine: list[float], theirs: list[float], paired: bool) -> str:
    """'worse'/'better'/'same' at p < 0.05, two-sided (Wilcoxon signed-rank when paired, else Mann-Whitney), the
    side the test finds (:mod:`significance`)."""
    a, b = np.asarray(mine, dtype=float), np.asarray(theirs, dtype=float)
    if min(len(a), len(b)) < 5:
        return "-"
    if paired and np.allclose(a, b):
        return "same (identical)"
    p, shift = rank_test(a, b, paired)
    if p >= 0.05:
        return f"same (p={p:.2f})"
    return f"{'worse' if shift > 0 else 'better'} (p={p:.3f})"


def protocol_table(
    data: dict[str, dict[int, dict]], task: str, workers: int, budget: int
) -> tuple[str, dict]:
    """The protocol table for one task and worker count; also returns each method's mean regret and lmtune's
    default's over the same seeds. Each method is summarised over its own seeds; the test against lmtune's default
    pairs the seeds both have."""
    data = {m: runs for m, runs in data.items() if runs}
    raw = {m: {s: final_regret(r) for s, r in runs.items()} for m, runs in data.items()}
    worst = np.nanmax([v for vs in raw.values() for v in vs.values()] + [0.0])
    regrets = {m: {s: worst if np.isnan(v) else v for s, v in vs.items()} for m, vs in raw.items()}
    lines = [
        f"#### {task}, {workers} worker{'s' if workers > 1 else ''}: score within {budget} full trainings",
        "",
        "| method | seeds | mean regret | median regret | mean score | full trainings | vs lmtune auto (paired) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    means = {}
    for method, by_seed in regrets.items():
        runs = data[method]
        first = next(iter(runs.values()))
        sign = -1.0 if first["direction"] == "maximize" else 1.0
        values = list(by_seed.values())
        scores = [first["best_value"] + sign * v for v in values]
        limit = budget * first["unit"]
        full = np.mean([sum(1 for u in r["full_trainings"] if u <= limit) for r in runs.values()])
        common = sorted(set(by_seed) & set(regrets[DEFAULT]))
        means[method] = (float(np.mean(values)), float(np.mean([regrets[DEFAULT][s] for s in common])))
        test = (
            "-"
            if method == DEFAULT
            else versus([by_seed[s] for s in common], [regrets[DEFAULT][s] for s in common], paired=True)
        )
        lines.append(
            f"| {method} | {len(values)} | {np.mean(values):.4f} | {np.median(values):.4f} | "
            f"{np.mean(scores):.4f} | {full:.1f} | {test} |"
        )
    return "\n".join(lines), means


def budget_table(data: dict[str, dict[int, dict]], task: str, workers: int, budget: int) -> str:
    tolerance = TASKS[task][1]
    data = {m: runs for m, runs in data.items() if runs}
    curves = {m: [regret_curve(r) for r in runs.values()] for m, runs in data.items()}
    unit = next(iter(data.values()))[next(iter(next(iter(data.values()))))]["unit"]
    mean = {m: np.mean([np.where(np.isfinite(c), c, np.nan) for c in cs], axis=0) for m, cs in curves.items()}
    to_target = {m: float(np.median([budget_to(c, tolerance, unit) for c in cs])) for m, cs in curves.items()}
    random_mean = np.nan_to_num(mean.get(RANDOM, mean[DEFAULT]), nan=np.inf)
    marks = [b for b in (5, 10, 20, 30) if b < budget] + [budget]
    metric = TEST_METRIC.get(task, ("", "test acc"))[1]
    head = (
        f"| method | budget to within {tolerance:g} (median) | vs auto | "
        + " | ".join(f"regret @{b}" for b in marks)
        + f" | speed-up over RS | {metric} | vs Hyperband |"
    )
    lines = [
        f"#### {task}, {workers} worker{'s' if workers > 1 else ''}: budget to the target",
        "",
        head,
        "|" + " --- |" * (head.count("|") - 1),
    ]
    ref_area = [area(c) for c in curves.get(REFERENCE, [])]
    for method, cs in curves.items():
        regrets = [f"{mean[method][b * unit - 1]:.4f}" for b in marks]
        key = 2
        tests = [r["incumbents"][-1][key] for r in data[method].values() if r["incumbents"]]
        tests = [t for t in tests if t is not None]
        test = f"{np.mean(tests):.3f}" if tests else "-"
        sp = speedup(np.nan_to_num(mean[method], nan=np.inf), random_mean)
        vs_ref = (
            "-" if method == REFERENCE or not ref_area else versus([area(c) for c in cs], ref_area, False)
        )
        ratio = to_target[method] / to_target[DEFAULT]
        lines.append(
            f"| {method} | {to_target[method]:.1f} | {ratio:.2f}x | "
            + " | ".join(regrets)
            + f" | {sp:.2f}x | {test} | {vs_ref} |"
        )
    return "\n".join(lines)


def summary(
    means: dict[tuple[str, int], dict[str, tuple[float, float]]], workers: list[int], methods: list[str]
) -> str:
    """Each method's mean regret summed over the tasks it ran, beside lmtune's default on the same tasks (all its
    seeds, and only the seeds the method ran)."""
    lines = [
        "#### Mean regret summed over the tasks (each method beside lmtune auto on the same tasks)",
        "",
        "| method | workers | tasks | summed mean regret | lmtune auto, same tasks | lmtune auto, same tasks and seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for w in workers:
        for method in methods:
            tasks = [t for (t, ww), m in means.items() if ww == w and method in m]
            if not tasks:
                continue
            mine = sum(means[(t, w)][method][0] for t in tasks)
            auto = sum(means[(t, w)][DEFAULT][0] for t in tasks)
            paired = sum(means[(t, w)][method][1] for t in tasks)
            lines.append(f"| {method} | {w} | {len(tasks)} | {mine:.4f} | {auto:.4f} | {paired:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=5, help="seeds per round")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS, choices=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--budget", type=int, default=15, help="full trainings")
    parser.add_argument("--jobs", type=int, default=2, help="replays run at once")
    parser.add_argument("--venvs", type=Path, default=os.environ.get("LMTUNE_PEER_VENVS"))
    parser.add_argument("--out", type=Path, default=HERE.parent / "results" / "multifidelity")
    parser.add_argument("--tables-only", action="store_true")
    args = parser.parse_args()
    methods = [DEFAULT] + [m for m in args.methods if m != DEFAULT]
    seeds = list(range(args.seeds))
    start = time.time()
    if not args.tables_only:
        for first in range(0, args.seeds, args.chunk):
            chunk = seeds[first : first + args.chunk]
            groups = []
            for method in methods:
                python = interpreter(method, args.venvs)
                todo = [
                    (task, workers, seed)
                    for workers in args.workers
                    for task in args.tasks
                    for seed in missing(args.out, task, workers, args.budget, method, chunk)
                ]
                if python is None:
                    print(f"skipped {method}: no environment {PEERS[method].venv!r} under --venvs")
                elif todo:
                    groups.append((python, method, todo, args.budget, args.out))
            with ThreadPoolExecutor(args.jobs) as pool:
                for line in pool.map(lambda g: run_group(*g), groups):
                    print(line, flush=True)
    load_avg = os.getloadavg()
    print(
        f"\nbudget {args.budget} full trainings; up to {args.seeds} seeds; lmtune "
        f"{__import__('lmtune').__version__}, numpy {np.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load_avg[0]:.1f}, {time.time() - start:.0f} s\n"
    )
    means = {}
    for workers in args.workers:
        for task in args.tasks:
            data = {m: load(args.out, task, workers, args.budget, m, seeds) for m in methods}
            if not data[DEFAULT]:
                continue
            table, means[(task, workers)] = protocol_table(data, task, workers, args.budget)
            print(table, end="\n\n")
            print(budget_table(data, task, workers, args.budget), end="\n\n")
    print(summary(means, args.workers, methods))


if __name__ == "__main__":
    main()
