"""Which of ``scheduler: auto``'s choices pays: one-bracket BOHB variants on the simulated clock, 1 worker, the
protocol of ``run.py`` (regret of the best fully trained configuration within ``--budget`` full trainings).

    python benchmarks/multifidelity/ablation.py --seeds 20 --tasks sst2 mfh3-good --variants before centre auto
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# This folder (the task and peer modules) and the repository root (the lmtune beside the benchmarks) come first.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

from tasks import TASKS  # noqa: E402

import lmtune  # noqa: E402
from lmtune.executors.simulated import SimulatedExecutor  # noqa: E402
from lmtune.samplers import RandomSampler  # noqa: E402
from lmtune.schedulers import BOHB, SuccessiveHalving  # noqa: E402
from lmtune.schedulers.auto import AUTO_SETTINGS  # noqa: E402

BEFORE = {"n_brackets": 1}
#: Variant -> BOHB settings (None: ASHA with random search).
VARIANTS = {
    "random + ASHA": None,
    "before: TPE on the highest rung": BEFORE,
    "+ centre start": BEFORE | {"initial": "centre"},
    "+ model across rungs": BEFORE | {"model_rungs": "all"},
    "+ budget-aware top rung (0.3)": BEFORE | {"full_share": 0.3},
    "+ GP/TPE by sampler auto's rule": BEFORE | {"model": "auto"},
    "auto (all four)": dict(AUTO_SETTINGS),
}


def regret(task: str, settings: dict | None, seed: int, budget: int) -> tuple[float, int]:
    objective = TASKS[task][0](seed)
    scheduler = (
        SuccessiveHalving(objective.max_resource)
        if settings is None
        else BOHB(objective.max_resource, seed=seed, **settings)
    )
    study = lmtune.create_study(
        objective.direction, space=objective.space, sampler=RandomSampler(seed=seed), scheduler=scheduler
    )
    result = SimulatedExecutor(objective, 1, budget * objective.max_resource).run(study)
    found = result.incumbent_at(budget * objective.max_resource)
    sign = -1.0 if objective.direction == "maximize" else 1.0
    value = sign * (found.value - objective.best_value) if found is not None else np.nan
    return value, sum(e.epoch == objective.max_resource for e in result.events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=15)
    parser.add_argument(
        "--tasks", nargs="+", default=["sst2", "mfh3-good", "mfh3-bad", "mfh6-good", "mfh6-bad"]
    )
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    print("| variant | " + " | ".join(args.tasks) + " |")
    print("|" + " --- |" * (len(args.tasks) + 1))
    for variant in args.variants:
        cells = []
        for task in args.tasks:
            runs = [regret(task, VARIANTS[variant], s, args.budget) for s in range(args.seeds)]
            cells.append(f"{np.nanmean([r for r, _ in runs]):.4f} ({np.mean([f for _, f in runs]):.1f} full)")
        print(f"| {variant} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
