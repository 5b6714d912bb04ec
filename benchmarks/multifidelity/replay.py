"""Replay one method on one task, worker count and budget for some seeds, and store each run as JSON.

Run by ``run.py`` in the method's interpreter (a peer's virtual environment or this one):

    python benchmarks/multifidelity/replay.py --method "lmtune auto" --budget 15 \\
        --out benchmarks/results/multifidelity --runs sst2:1:0 sst2:1:1 mfh3-good:8:0

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

# This folder (the task and peer modules) and the repository root (the lmtune beside the benchmarks) come first.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]

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
        "settings": PEERS[method].settings,
    }


def current_run(path: Path, method: str) -> dict | None:
    """The run stored at ``path`` if it has the method's present settings (None: missing or stale)."""
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    return run if run.get("settings") == json.loads(json.dumps(PEERS[method].settings)) else None


def replay_and_store(method: str, runs: list[tuple[str, int, int]], budget: int, out: Path) -> None:
    """Replay ``runs`` (task, workers, seed) of ``method`` and store each as soon as it is done."""
    for task, workers, seed in runs:
        path = result_path(out, task, workers, budget, method, seed)
        run = replay(method, task, workers, seed, budget)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run))
        tmp.replace(path)
        print(f"{method} {task} w{workers} seed {seed}: {run['cpu_seconds']} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", required=True, choices=list(PEERS))
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", nargs="+", required=True, help="TASK:WORKERS:SEED")
    args = parser.parse_args()
    runs = []
    for spec in args.runs:
        task, workers, seed = spec.rsplit(":", 2)
        if task not in TASKS:
            parser.error(f"--runs: unknown task {task!r}; use one of {sorted(TASKS)}")
        runs.append((task, int(workers), int(seed)))
    replay_and_store(args.method, runs, args.budget, args.out)


if __name__ == "__main__":
    main()
