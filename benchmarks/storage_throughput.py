"""Storage throughput: trials per second of a no-op objective on one SQLite file, lmtune beside Optuna.

Each run fills a fresh SQLite study with ``--trials`` trials of a no-op objective over a two-parameter float space
(random sampler), from 1 and from 2 worker processes. lmtune declares the space (``space=``) and stops at the study
total (``total_trials=``); Optuna suggests the same two floats with ``suggest_float`` through
``optuna.storages.RDBStorage``, each worker running its share of ``n_trials``. Workers start, import and open the
storage first, then pass a barrier together; the clock runs from that start to the last worker's end.

lmtune opens SQLite in WAL mode with ``synchronous=NORMAL``; Optuna's RDBStorage keeps SQLite's defaults (a
rollback journal and ``synchronous=FULL``: an fsync per commit). Both are what a user gets. A third column gives
Optuna lmtune's settings (a connect hook on every SQLAlchemy engine of its worker processes), to show how much of
the gap comes from the journal and how much from the rest.

Errors are exceptions that escaped a worker's loop plus trials not recorded COMPLETE (and duplicated numbers).

    python benchmarks/storage_throughput.py [--trials 500] [--workers 1 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

SPACE = {"x": {"type": "float", "low": -5.0, "high": 10.0}, "y": {"type": "float", "low": 0.0, "high": 15.0}}
STUDY = "throughput"


def _lmtune_setup(url: str) -> None:
    import lmtune

    lmtune.create_study(storage=url, study_name=STUDY, space=SPACE, seed=0).close()


def _lmtune_worker(url: str, total: int, share: int, worker: int, start: Any, out: Any) -> None:
    import lmtune
    from lmtune.samplers import RandomSampler

    study = lmtune.create_study(
        storage=url, study_name=STUDY, space=SPACE, load_if_exists=True, sampler=RandomSampler(seed=worker)
    )
    errors = 0
    start.wait()
    began = time.perf_counter()
    try:
        study.optimize(lambda trial: 0.0, total_trials=total)
    except Exception:
        errors += 1
    out.put((began, time.perf_counter(), errors))
    study.close()


def _lmtune_count(url: str) -> tuple[int, int]:
    import lmtune
    from lmtune.trial import TrialState

    trials = lmtune.load_study(STUDY, url).trials
    numbers = [t.number for t in trials]
    done = sum(t.state is TrialState.COMPLETE for t in trials)
    return done, len(trials) - done + (len(numbers) - len(set(numbers)))


def _optuna_setup(url: str) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.create_study(storage=optuna.storages.RDBStorage(url), study_name=STUDY)


def _optuna_objective(trial: Any) -> float:
    trial.suggest_float("x", -5.0, 10.0)
    trial.suggest_float("y", 0.0, 15.0)
    return 0.0


def _optuna_worker(url: str, total: int, share: int, worker: int, start: Any, out: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(
        storage=optuna.storages.RDBStorage(url),
        study_name=STUDY,
        sampler=optuna.samplers.RandomSampler(seed=worker),
    )
    errors = 0
    start.wait()
    began = time.perf_counter()
    try:
        study.optimize(_optuna_objective, n_trials=share, catch=())
    except Exception:
        errors += 1
    out.put((began, time.perf_counter(), errors))


def _sqlite_as_lmtune() -> None:
    """Give every SQLite connection of this process lmtune's settings: WAL, synchronous=NORMAL."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _optuna_wal_setup(url: str) -> None:
    _sqlite_as_lmtune()
    _optuna_setup(url)


def _optuna_wal_worker(url: str, total: int, share: int, worker: int, start: Any, out: Any) -> None:
    _sqlite_as_lmtune()
    _optuna_worker(url, total, share, worker, start, out)


def _optuna_count(url: str) -> tuple[int, int]:
    import optuna

    trials = optuna.load_study(storage=optuna.storages.RDBStorage(url), study_name=STUDY).trials
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    return done, len(trials) - done


LIBRARIES = {
    "lmtune": (_lmtune_setup, _lmtune_worker, _lmtune_count),
    "optuna": (_optuna_setup, _optuna_worker, _optuna_count),
    "optuna-wal": (_optuna_wal_setup, _optuna_wal_worker, _optuna_count),
}


def run(library: str, workers: int, trials: int, folder: Path) -> tuple[float, int, int]:
    """Fill one fresh study; return (trials per second, COMPLETE trials, errors)."""
    setup, worker, count = LIBRARIES[library]
    url = f"sqlite:///{folder / f'{library}-{workers}-{time.time_ns()}.db'}"
    setup(url)
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(workers + 1, timeout=600), ctx.Queue()
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    procs = [ctx.Process(target=worker, args=(url, trials, shares[i], i, start, out)) for i in range(workers)]
    for p in procs:
        p.start()
    start.wait()  # every worker has imported its library and opened the storage
    results = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    began, ended = min(r[0] for r in results), max(r[1] for r in results)
    done, bad = count(url)
    errors = sum(r[2] for r in results) + bad + sum(p.exitcode != 0 for p in procs)
    return done / (ended - began), done, errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="trials per study (default 500)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts (default 1 2)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per cell; the median is shown (default 3)"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    runs: dict[tuple[int, str], list[tuple[float, int, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="lmtune-bench-") as tmp:
        for workers in args.workers:
            for _ in range(args.repeats):  # interleaved, so that a busy spell hits every library alike
                for library in LIBRARIES:
                    runs.setdefault((workers, library), []).append(
                        run(library, workers, args.trials, Path(tmp))
                    )
            print(f"done: {workers} process(es)", file=sys.stderr)
    print(
        f"SQLite, {args.trials} trials per study, no-op objective, 2 float parameters, random sampler; "
        f"trials/s as the median of {args.repeats} run(s); errors summed over the runs\n"
    )
    print(
        "| processes | lmtune | Optuna | lmtune / Optuna | Optuna, WAL + synchronous=NORMAL | lmtune / that "
        "| errors (lmtune, Optuna, Optuna WAL) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for workers in args.workers:
        rate = {lib: sorted(r[0] for r in runs[workers, lib])[args.repeats // 2] for lib in LIBRARIES}
        errors = ", ".join(str(sum(r[2] for r in runs[workers, lib])) for lib in LIBRARIES)
        lm, op, wal = rate["lmtune"], rate["optuna"], rate["optuna-wal"]
        print(
            f"| {workers} | {lm:.0f} | {op:.0f} | {lm / op:.1f}x | {wal:.0f} | {lm / wal:.1f}x | {errors} |"
        )
    print(
        f"\nPython {platform.python_version()}, lmtune {version('lmtune')}, optuna {version('optuna')}, "
        f"SQLAlchemy {version('sqlalchemy')}, SQLite {__import__('sqlite3').sqlite_version}, "
        f"{platform.machine()} with {mp.cpu_count()} CPU cores; "
        f"load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after the runs"
    )


if __name__ == "__main__":
    main()
