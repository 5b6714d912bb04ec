"""Multi-fidelity benchmark: lmtune's schedulers against Optuna's pruners, DEHB and random search, on a simulated
clock (recorded SST-2 fine-tuning curves, multi-fidelity Hartmann functions and, on request, LCBench through the
YAHPO Gym surrogate, which needs onnxruntime), with 1 and 8 workers.

    .venv/bin/python benchmarks/multifidelity/run.py            # 10 seeds, SST-2 and Hartmann, 1 and 8 workers
    .venv/bin/python benchmarks/multifidelity/run.py --seeds 3 --tasks sst2
    .venv/bin/python benchmarks/multifidelity/run.py --tasks lcbench-167190 lcbench-189906 lcbench-3945

Budget: epochs trained in total, in units of one full training (``max_resource`` epochs), up to ``--budget``.
Printed per task and worker count: median budget to come within the target of the best (a run that never does
counts as the whole budget), mean regret at several budgets, the speed-up over random search (DEHB paper:
the budget random search needs for its final mean regret over the budget another method needs for it), the
recorded test accuracy of the returned configuration (SST-2; LCBench: the surrogate's test balanced accuracy), and a one-sided Mann-Whitney test against
lmtune Hyperband on the area under the regret curve.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import PEERS  # noqa: E402

from lmtune.benchmarking.curves import MultiFidelityFunction, MultiFidelityHartmann, RecordedCurves  # noqa: E402

#: Task name -> (objective factory (seed), tolerance for "reached the best": 1 accuracy point; 0.25 on Hartmann,
#: about 7% of its optimum).
TASKS = {
    "sst2": (lambda seed: RecordedCurves(), 0.01),
    "mfh3-good": (lambda seed: MultiFidelityHartmann(3, "good", seed=seed), 0.25),
    "mfh3-bad": (lambda seed: MultiFidelityHartmann(3, "bad", seed=seed), 0.25),
    "mfh6-good": (lambda seed: MultiFidelityHartmann(6, "good", seed=seed), 0.25),
    "mfh6-bad": (lambda seed: MultiFidelityHartmann(6, "bad", seed=seed), 0.25),
}
DEFAULT_TASKS = list(TASKS)


def _lcbench(instance: str) -> Callable[[int], MultiFidelityFunction]:
    def make(seed: int) -> MultiFidelityFunction:
        from lmtune.benchmarking.lcbench import LCBench

        return LCBench(instance, seed=seed)

    return make


#: LCBench instances (OpenML task ids; 52 epochs a full training), tolerance in validation accuracy (fraction).
for _instance in ("167190", "189906", "3945"):
    TASKS[f"lcbench-{_instance}"] = (_lcbench(_instance), 0.01)
#: The recorded metric shown for the returned configuration, per task (others: none).
TEST_METRIC = {"sst2": ("test_acc", "test acc")} | {
    name: ("test_balanced_accuracy", "test bal. acc") for name in TASKS if name.startswith("lcbench-")
}
DEFAULT = next(iter(PEERS))
REFERENCE = "lmtune Hyperband"
RANDOM = "random search (full budget)"


def one_run(task: str, peer: str, n_workers: int, seed: int, budget: int) -> dict:
    """Regret after each epoch of budget, and the test accuracy of the final returned configuration."""
    objective: MultiFidelityFunction = TASKS[task][0](seed)
    max_epochs = budget * objective.max_resource
    result = PEERS[peer](objective, n_workers, max_epochs, seed)
    sign = -1.0 if objective.direction == "maximize" else 1.0
    regret = np.full(max_epochs, np.inf)
    for event in result.incumbents():
        regret[event.epochs_used - 1 :] = sign * (event.value - objective.best_value)
    final = result.incumbent_at(max_epochs)
    key = TEST_METRIC.get(task, ("test_acc",))[0]
    test = final.extra.get(key) if final is not None else None
    return {
        "task": task,
        "peer": peer,
        "workers": n_workers,
        "seed": seed,
        "regret": regret,
        "test": test,
        "unit": objective.max_resource,
    }


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
    worst = np.nanmax(finite) if np.isfinite(np.nanmax(finite)) else 1.0
    return float(np.mean(np.log10(np.nan_to_num(finite, nan=worst) + 1e-4)))


def table(runs: list[dict], task: str, workers: int, budget: int, peers: list[str]) -> str:
    tolerance = TASKS[task][1]
    rows = [r for r in runs if r["task"] == task and r["workers"] == workers]
    by_peer = {p: [r for r in rows if r["peer"] == p] for p in peers}
    mean = {
        p: np.mean([np.where(np.isfinite(r["regret"]), r["regret"], np.nan) for r in rs], axis=0)
        for p, rs in by_peer.items()
    }
    unit = rows[0]["unit"]
    to_target = {
        p: float(np.median([budget_to(r["regret"], tolerance, unit) for r in rs]))
        for p, rs in by_peer.items()
    }
    random_mean = np.nan_to_num(mean[RANDOM], nan=np.inf)
    marks = [b for b in (5, 10, 20, budget) if b <= budget]
    head = (
        f"| method | budget to within {tolerance:g} (median) | vs default | "
        + " | ".join(f"regret @{b}" for b in marks)
        + f" | speed-up over RS | {TEST_METRIC.get(task, ('', 'test acc'))[1]} | vs Hyperband |"
    )
    lines = [
        f"### {task}, {workers} worker{'s' if workers > 1 else ''}",
        "",
        head,
        "|" + " --- |" * (head.count("|") - 1),
    ]
    ref_area = [area(r["regret"]) for r in by_peer[REFERENCE]]
    for peer, rs in by_peer.items():
        regrets = [f"{mean[peer][b * unit - 1]:.4f}" for b in marks]
        tests = [r["test"] for r in rs if r["test"] is not None]
        test = f"{np.mean(tests):.3f}" if tests else "-"
        sp = speedup(np.nan_to_num(mean[peer], nan=np.inf), random_mean)
        areas = [area(r["regret"]) for r in rs]
        if peer == REFERENCE:
            versus = "-"
        else:
            worse = mannwhitneyu(areas, ref_area, alternative="greater").pvalue
            better = mannwhitneyu(areas, ref_area, alternative="less").pvalue
            versus = (
                f"worse (p={worse:.3f})"
                if worse < 0.05
                else f"better (p={better:.3f})"
                if better < 0.05
                else "same"
            )
        ratio = to_target[peer] / to_target[DEFAULT]
        lines.append(
            f"| {peer} | {to_target[peer]:.1f} | {ratio:.2f}x | "
            + " | ".join(regrets)
            + f" | {sp:.2f}x | {test} | {versus} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS, choices=list(TASKS))
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--budget", type=int, default=30, help="full trainings")
    parser.add_argument("--jobs", type=int, default=2, help="processes")
    args = parser.parse_args()
    for required in (DEFAULT, REFERENCE, RANDOM):
        if required not in args.peers:
            args.peers.append(required)
    jobs = [
        (t, p, w, s, args.budget)
        for t in args.tasks
        for w in args.workers
        for p in args.peers
        for s in range(args.seeds)
    ]
    start = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(one_run, *zip(*jobs, strict=False), chunksize=4))
    import dehb
    import optuna

    print(
        f"seeds={args.seeds} budget={args.budget} full trainings; lmtune {__import__('lmtune').__version__}, "
        f"optuna {optuna.__version__}, dehb {getattr(dehb, '__version__', '0.1.2')}, numpy {np.__version__}, "
        f"python {platform.python_version()}, {platform.machine()} {platform.processor() or ''}, "
        f"{time.time() - start:.0f} s\n"
    )
    for task in args.tasks:
        for workers in args.workers:
            print(table(runs, task, workers, args.budget, args.peers), end="\n\n")


if __name__ == "__main__":
    main()
