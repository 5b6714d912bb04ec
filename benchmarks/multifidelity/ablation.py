"""Which of ``scheduler: auto``'s choices pays: one-bracket BOHB variants on the simulated clock (``--workers``, 1 by default), the
protocol of ``run.py`` (regret of the best fully trained configuration within ``--budget`` full trainings; a run
with none counts as the worst regret in the table on its task), each variant's regrets tested against the first
variant's on the same seeds (paired Wilcoxon, two-sided).

    python benchmarks/multifidelity/ablation.py --seeds 20 --tasks sst2 mfh3-good --variants before auto
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# This folder (the task and peer modules) and the repository root (the lmtune beside the benchmarks) come first.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

from peers import AUTO_EARLIER, AUTO_UNIFORM, ParallelRuleBefore  # noqa: E402
from significance import rank_test  # noqa: E402
from tasks import TASKS  # noqa: E402

import lmtune  # noqa: E402
from lmtune.executors.simulated import SimulatedExecutor  # noqa: E402
from lmtune.samplers import RandomSampler  # noqa: E402
from lmtune.schedulers import BOHB, SuccessiveHalving  # noqa: E402
from lmtune.schedulers.auto import AUTO_SETTINGS, IN_PARALLEL  # noqa: E402

BEFORE = {"n_brackets": 1}
#: ``auto`` in parallel as it was measured before its random draws came from a Sobol sequence.
PARALLEL = AUTO_UNIFORM | IN_PARALLEL
#: ``auto``'s rule in parallel before it left out the first pass and fitted the model from 3 results on.
PARALLEL_BEFORE = AUTO_UNIFORM | ParallelRuleBefore.in_parallel
#: Variant -> BOHB settings (None: ASHA with random search). Each ``auto`` variant is ``auto`` as it was when the
#: variant was measured (uniform random draws) unless it names its Sobol draws, as ``auto`` has now.
VARIANTS = {
    "random + ASHA": None,
    "before: TPE on the highest rung": BEFORE,
    "+ centre start": BEFORE | {"initial": "centre"},
    "+ model across rungs": BEFORE | {"model_rungs": "all"},
    "+ budget-aware top rung (0.3)": BEFORE | {"full_share": 0.3},
    "+ GP/TPE by sampler auto's rule": BEFORE | {"model": "auto"},
    "auto, earlier (top rung 0.3)": AUTO_EARLIER,
    "earlier + model on the rungs that agree (0.3)": AUTO_EARLIER | {"min_correlation": 0.3},
    "earlier + both (top rung 0.5, agree 0.5)": AUTO_EARLIER | {"full_share": 0.5, "min_correlation": 0.5},
    "earlier + top rung 0.5": AUTO_EARLIER | {"full_share": 0.5},
    "auto, ranked ladder (top rung 0.5, rungs that agree 0.3)": AUTO_UNIFORM | {"model_rungs": "all"},
    "auto (calibrated rungs, top rung 0.5, rungs that agree 0.3)": dict(AUTO_UNIFORM),
    "auto + rungs ranked by forecast final value": AUTO_UNIFORM | {"rank_by": "forecast"},
    "auto - rungs that agree": AUTO_UNIFORM | {"min_correlation": None},
    "auto - random share": AUTO_UNIFORM | {"random_fraction": 0.0},
    "auto - model across rungs": AUTO_UNIFORM | {"model_rungs": "highest", "min_correlation": None},
    "auto - centre start": AUTO_UNIFORM | {"initial": "random"},
    "auto - GP/TPE rule (TPE)": AUTO_UNIFORM | {"model": "tpe"},
    "auto - budget-aware top rung": AUTO_UNIFORM | {"full_share": 0.0},
    "auto - both (model on the highest rung, no top-rung share)": AUTO_UNIFORM
    | {"model_rungs": "highest", "min_correlation": None, "full_share": 0.0},
    # What auto does while trials run in parallel (IN_PARALLEL), and changes to it tried at 8 workers.
    "auto in parallel": PARALLEL,
    "auto in parallel, before (no top-rung share)": PARALLEL_BEFORE,
    "before + no first pass": PARALLEL_BEFORE | {"first_pass": False},
    "before + model after 3 results": PARALLEL_BEFORE | {"min_points_in_model": 3},
    "before + paused trials promoted": PARALLEL_BEFORE | {"pause": True},
    "before, random share 0.15": PARALLEL_BEFORE | {"random_fraction": 0.15},
    "before, no random share": PARALLEL_BEFORE | {"random_fraction": 0.0},
    "before, reduction factor 2": PARALLEL_BEFORE | {"reduction_factor": 2},
    "in parallel + paused trials promoted": PARALLEL | {"pause": True},
    "in parallel, random share 0.2": PARALLEL | {"random_fraction": 0.2},
    "in parallel, top-rung share 0.5": PARALLEL | {"full_share": 0.5},
    # auto's random draws (the random share and the trials before the model) from a scrambled Sobol sequence.
    "auto, Sobol draws": dict(AUTO_SETTINGS),
    "auto in parallel, Sobol draws": AUTO_SETTINGS | IN_PARALLEL,
}


def regret(task: str, settings: dict | None, seed: int, budget: int, workers: int = 1) -> tuple[float, int]:
    """Regret of the best fully trained configuration within the budget, and the full trainings inside it."""
    objective = TASKS[task][0](seed)
    scheduler = (
        SuccessiveHalving(objective.max_resource)
        if settings is None
        else BOHB(objective.max_resource, seed=seed, **settings)
    )
    study = lmtune.create_study(
        objective.direction, space=objective.space, sampler=RandomSampler(seed=seed), scheduler=scheduler
    )
    limit = budget * objective.max_resource
    result = SimulatedExecutor(objective, workers, limit).run(study)
    found = result.incumbent_at(limit)
    sign = -1.0 if objective.direction == "maximize" else 1.0
    value = sign * (found.value - objective.best_value) if found is not None else np.nan
    full = sum(e.epoch == objective.max_resource and e.epochs_used <= limit for e in result.events)
    return value, full


def versus(mine: np.ndarray, reference: np.ndarray) -> str:
    """'+' / '-' with p when a paired Wilcoxon test finds ``mine`` better / worse at p < 0.05 (the side the test
    finds, :mod:`significance`), else ''."""
    if np.allclose(mine, reference):
        return ""
    p, shift = rank_test(mine, reference, paired=True)
    if p >= 0.05:
        return ""
    return f" {'+' if shift < 0 else '-'}p={p:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds first..first+seeds-1 (others than the tables' check a choice)",
    )
    parser.add_argument("--budget", type=int, default=15)
    parser.add_argument(
        "--workers", type=int, default=1, help="trials running at once on the simulated clock"
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["sst2", "sst2-prior", "mfh3-good", "mfh3-bad", "mfh6-good", "mfh6-bad", "lcbench-167190"],
        choices=list(TASKS),
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    runs = {
        (variant, task): [regret(task, VARIANTS[variant], s, args.budget, args.workers) for s in seeds]
        for variant in args.variants
        for task in args.tasks
    }
    # A run with no fully trained configuration inside the budget returns nothing: it counts as the worst regret
    # any variant reached on the task (as in run.py), and the cell says how many there were.
    worst = {
        task: np.nanmax([r for v in args.variants for r, _ in runs[v, task]] + [0.0]) for task in args.tasks
    }
    print("| variant | " + " | ".join(args.tasks) + " | summed |")
    print("|" + " --- |" * (len(args.tasks) + 2))
    reference: dict[str, np.ndarray] = {}
    for variant in args.variants:
        cells, total = [], 0.0
        for task in args.tasks:
            raw = np.array([r for r, _ in runs[variant, task]])
            regrets = np.where(np.isnan(raw), worst[task], raw)
            test = versus(regrets, reference[task]) if task in reference else ""
            reference.setdefault(task, regrets)
            total += float(regrets.mean())
            empty = f", {int(np.isnan(raw).sum())} none" if np.isnan(raw).any() else ""
            full = np.mean([f for _, f in runs[variant, task]])
            cells.append(f"{regrets.mean():.4f} ({full:.1f} full{empty}){test}")
        print(f"| {variant} | " + " | ".join(cells) + f" | {total:.4f} |", flush=True)


if __name__ == "__main__":
    main()
