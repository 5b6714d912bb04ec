"""Replay one method on one task, worker count and budget for some seeds, and store each run as JSON.

Run by ``run.py`` in the method's interpreter (a peer's virtual environment or this one):

    python benchmarks/multifidelity/replay.py --method "lmtune auto" --task sst2 --workers 1 --budget 15 \\
        --seeds 0 1 2 --out benchmarks/results/multifidelity

A run is stored as ``OUT/<task>/w<workers>-b<budget>/<method>/<seed>.json``: the incumbent trajectory (epochs used,
value and recorded test metric each time the best fully trained configuration improved) and the epochs used at
every completed full training, which is all the tables need.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import PEERS  # noqa: E402
from tasks import TASKS, TEST_METRIC  # noqa: E402


def result_path(out: Path, task: str, workers: int, budget: int, method: str, seed: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", method).strip("-").lower()
    return out / task / f"w{workers}-b{budget}" / slug / f"{seed}.json"


def replay(method: str, task: str, workers: int, seed: int, budget: int) -> dict:
    """One run as a JSON-able dict."""
    objective = TASKS[task][0](seed)
    max_epochs = budget * objective.max_resource
    started = time.process_time()
    result = PEERS[method].runner(objective, workers, max_epochs, seed)
    key = TEST_METRIC.get(task, ("",))[0]
    return {
        "task": task,
        "method": method,
        "workers": workers,
        "seed": seed,
        "budget": budget,
        "unit": objective.max_resource,
        "direction": objective.direction,
        "best_value": objective.best_value,
        "incumbents": [[e.epochs_used, e.value, e.extra.get(key)] for e in result.incumbents()],
        "full_trainings": [e.epochs_used for e in result.events if e.epoch == objective.max_resource],
        "cpu_seconds": round(time.process_time() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True, choices=list(PEERS))
    parser.add_argument("--task", required=True, choices=list(TASKS))
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for seed in args.seeds:
        path = result_path(args.out, args.task, args.workers, args.budget, args.method, seed)
        run = replay(args.method, args.task, args.workers, seed, args.budget)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run))
        tmp.replace(path)
        print(f"{args.method} {args.task} w{args.workers} seed {seed}: {run['cpu_seconds']} s", flush=True)


if __name__ == "__main__":
    main()
