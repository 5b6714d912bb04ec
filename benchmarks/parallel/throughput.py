"""Parallel workers on one study: trials per second of a no-op objective, lmtune beside Optuna's RDB storage.

For each storage (a fresh SQLite file; PostgreSQL when ``--postgres URL`` or ``LMTUNE_POSTGRES_URL`` is given) and
each worker count, N processes share one new study of ``--trials`` trials; every process runs its share
(``n_trials = trials / N``) of the same define-by-run objective (``x = trial.suggest_float("x", 0, 1)``, return x)
with a seeded random sampler, lmtune through ``lmtune.create_study(storage=URL)``, Optuna through
``optuna.storages.RDBStorage``. Processes import and open the storage first, then start together at a barrier; the
clock runs from there to the last process's end. Errors: exceptions that escaped a process, plus trials not
recorded COMPLETE, plus duplicated trial numbers.

PostgreSQL: lmtune's sessions commit with ``synchronous_commit=off`` by default (a crash of the server may lose the
last commits, never corrupt the database: what SQLite's WAL with ``synchronous=NORMAL`` promises); Optuna's wait
for the disk (``synchronous_commit=on``, the server default). So the PostgreSQL rows show both defaults and, in the
same run, each library given the other's setting: lmtune with ``?synchronous_commit=on`` in its URL, Optuna with
``PGOPTIONS=-c synchronous_commit=off`` in its processes.

    python benchmarks/parallel/throughput.py [--trials 400] [--workers 1 2 4 8] [--postgres URL]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import tempfile
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

LIBRARIES = ("lmtune", "optuna")
# PostgreSQL only: each library with the other's commit setting.
SWAPPED = {"lmtune-sync": "lmtune", "optuna-async": "optuna"}


def objective(trial: Any) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def _create(library: str, url: str, name: str) -> None:
    if library == "lmtune":
        import lmtune
        from lmtune.samplers import RandomSampler

        lmtune.create_study(storage=url, study_name=name, sampler=RandomSampler(seed=0)).close()
    else:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        optuna.create_study(storage=url, study_name=name)


def _open(library: str, url: str, name: str, rank: int) -> Any:
    if library == "lmtune":
        import lmtune
        from lmtune.samplers import RandomSampler

        return lmtune.load_study(name, url, sampler=RandomSampler(seed=0))
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna.load_study(study_name=name, storage=url, sampler=optuna.samplers.RandomSampler(seed=rank))


def _worker(library: str, url: str, name: str, rank: int, n_trials: int, barrier: Any, out: Any) -> None:
    if library == "optuna-async":  # read by libpq when Optuna connects
        os.environ["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "") + " -c synchronous_commit=off").strip()
    elif library == "lmtune-sync":
        url += ("&" if "?" in url else "?") + "synchronous_commit=on"
    library = SWAPPED.get(library, library)
    study = _open(library, url, name, rank)
    barrier.wait()
    start = time.perf_counter()
    error = None
    try:
        if library == "lmtune":
            study.optimize(objective, n_trials=n_trials, max_failed_trials=None)
        else:
            study.optimize(objective, n_trials=n_trials)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    out.put((start, time.perf_counter(), error))


def _count_problems(library: str, url: str, name: str, expected: int) -> int:
    if library == "lmtune":
        import lmtune

        records = lmtune.load_study(name, url).trials
        numbers = [r.number for r in records]
        complete = sum(r.state.value == "COMPLETE" for r in records)
    else:
        import optuna

        trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
        numbers = [t.number for t in trials]
        complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    return (expected - complete) + (len(numbers) - len(set(numbers)))


def measure(library: str, url: str, workers: int, trials: int) -> tuple[float, int]:
    """Trials per second and errors for one library, storage and worker count."""
    name = f"parallel-{library}-{workers}-{uuid.uuid4().hex[:6]}"
    _create(SWAPPED.get(library, library), url, name)
    context = mp.get_context("spawn")
    barrier, out = context.Barrier(workers), context.Queue()
    share = trials // workers
    processes = [
        context.Process(target=_worker, args=(library, url, name, r, share, barrier, out))
        for r in range(workers)
    ]
    for p in processes:
        p.start()
    results = [out.get() for _ in processes]
    for p in processes:
        p.join()
    elapsed = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    errors = sum(error is not None for _, _, error in results)
    errors += _count_problems(SWAPPED.get(library, library), url, name, share * workers)
    return share * workers / elapsed, errors


def _storages(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    storages: dict[str, Any] = {}
    storages["sqlite"] = lambda lib, n: f"sqlite:///{folder / f'{lib}-{n}.db'}"
    postgres = args.postgres or os.environ.get("LMTUNE_POSTGRES_URL")
    if postgres:
        storages["postgresql"] = lambda lib, n: postgres
    return storages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=400, help="trials per study (default 400)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument(
        "--postgres", help="a PostgreSQL URL (postgresql+psycopg://...); default $LMTUNE_POSTGRES_URL"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"lmtune {version('lmtune')}, optuna {version('optuna')}, SQLAlchemy {version('sqlalchemy')}"
    )
    print(
        f"{args.trials} trials per study, define-by-run no-op objective, random sampler; os.getloadavg() at start "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        for storage, url_of in _storages(args, Path(folder)).items():
            libraries = LIBRARIES if storage == "sqlite" else (*LIBRARIES, *SWAPPED)
            _table(storage, libraries, url_of, args)


def _table(storage: str, libraries: tuple[str, ...], url_of: Any, args: argparse.Namespace) -> None:
    """One row per worker count and a "best" row; on PostgreSQL the swapped commit settings too."""
    swapped = len(libraries) > len(LIBRARIES)
    head = "| storage | workers | lmtune trials/s | optuna trials/s | ratio |"
    if swapped:
        head += " lmtune sync=on | ratio to optuna | optuna sync=off | lmtune to optuna sync=off |"
    print(f"\n{head} errors ({' / '.join(libraries)}) |")
    print("| --- | ---: |" + " ---: |" * (head.count("|") - 3) + " --- |")
    best: dict[str, float] = {}
    for n in [*args.workers, "best"]:
        rate: dict[str, float] = {}
        errors: dict[str, int] = {}
        for library in libraries:
            if n == "best":
                rate[library] = best[library]
            else:
                rate[library], errors[library] = measure(library, url_of(library, n), int(n), args.trials)
                best[library] = max(best.get(library, 0.0), rate[library])
        row = f"| {storage} | {n} | {rate['lmtune']:.1f} | {rate['optuna']:.1f} | {rate['lmtune'] / rate['optuna']:.1f}x |"
        if swapped:
            row += (
                f" {rate['lmtune-sync']:.1f} | {rate['lmtune-sync'] / rate['optuna']:.1f}x |"
                f" {rate['optuna-async']:.1f} | {rate['lmtune'] / rate['optuna-async']:.1f}x |"
            )
        print(f"{row} {' / '.join(str(errors[lib]) for lib in libraries) if errors else ''} |", flush=True)


if __name__ == "__main__":
    main()
