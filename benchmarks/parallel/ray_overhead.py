"""Ray executor overhead: wall time of 100 trivial trials through the Ray executor beside the local process pool.

Both run ``--trials`` trials of a no-op objective (declared one-parameter space, random sampler) on a fresh SQLite
study with ``--workers`` trials at once. The local pool spawns a fresh process per trial (isolation: a crashing
trial cannot take the study down, GPU memory is returned); Ray runs each trial as a task in its reused worker
processes. Ray's start-up (``ray.init``) is timed separately: a cluster is started once and serves many studies.

    python benchmarks/parallel/ray_overhead.py [--trials 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def noop(trial: Any) -> float:
    return trial.params["x"]


def run(executor: Any, url: str, name: str, trials: int) -> tuple[float, int]:
    """Seconds to run ``trials`` trials and how many did not end COMPLETE."""
    import lmtune
    from lmtune.samplers import RandomSampler

    study = lmtune.create_study(storage=url, study_name=name, space=SPACE, sampler=RandomSampler(seed=0))
    start = time.perf_counter()
    executor.optimize(study, noop, total_trials=trials)
    elapsed = time.perf_counter() - start
    errors = sum(r.state.value != "COMPLETE" for r in study.trials)
    study.close()
    return elapsed, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    import ray

    from lmtune.executors import LocalExecutor, RayExecutor

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"lmtune {version('lmtune')}, ray {version('ray')}; {args.trials} no-op trials, {args.workers} at once\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'overhead.db'}"
        local, local_errors = run(LocalExecutor(workers=args.workers), url, "local", args.trials)
        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, logging_level="ERROR")
        startup = time.perf_counter() - start
        remote, ray_errors = run(RayExecutor(workers=args.workers), url, "ray", args.trials)
        ray.shutdown()
    print("| executor | start-up s | trials s | trials/s | vs local pool | errors |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| local pool | 0.0 | {local:.1f} | {args.trials / local:.1f} | 1.00x | {local_errors} |")
    print(
        f"| ray | {startup:.1f} | {remote:.1f} | {args.trials / remote:.1f} | {remote / local:.2f}x | {ray_errors} |"
    )
    print(
        f"| ray, start-up included | | {startup + remote:.1f} | {args.trials / (startup + remote):.1f} | "
        f"{(startup + remote) / local:.2f}x | |"
    )


if __name__ == "__main__":
    main()
