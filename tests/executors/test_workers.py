"""Several `lmtune worker` processes on one study: exact fill, simultaneous creation, and SIGKILL at any moment."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import start_worker
from parallel_objectives import LOG_ENV

import lmtune
from lmtune.samplers import RandomSampler
from lmtune.trial import TrialState

N_WORKERS = 4
N_TRIALS = 24


def _storage(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("postgres_url")


def _starts(log: Path) -> Counter[int]:
    """How often each trial number started, from the objective's log."""
    return Counter(int(line.split()[0]) for line in log.read_text().splitlines() if line.endswith("start"))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_workers_started_together_fill_the_study_exactly(backend, tmp_path, request, write_study, worker_env):
    storage = _storage(backend, tmp_path, request)
    name = f"fill-{uuid.uuid4().hex[:8]}"
    path = write_study(storage, "parallel_objectives:short", f"n_trials: {N_TRIALS}\n", name=name)
    log = tmp_path / "trials.log"
    worker_env[LOG_ENV] = str(log)

    # All at once on a study that does not exist yet: one creates it, the others join it.
    workers = [start_worker(path, worker_env) for _ in range(N_WORKERS)]
    results = [(w.wait(timeout=180), w.stderr.read().decode()) for w in workers]

    assert [code for code, _ in results] == [0] * N_WORKERS, "\n".join(err for _, err in results)
    study = lmtune.load_study(name, storage)
    records = study.trials
    assert [r.number for r in records] == list(range(N_TRIALS))
    assert all(r.state is TrialState.COMPLETE for r in records), [(r.number, r.state) for r in records]
    starts = _starts(log)
    assert sorted(starts) == list(range(N_TRIALS)) and set(starts.values()) == {1}  # each ran once
    assert len({r.worker_id for r in records}) >= 2  # the work really was shared
    # Suggestions are keyed by (seed, trial number): the same configurations as one process would choose.
    alone = lmtune.create_study(
        space={"x": {"type": "float", "low": 0, "high": 1}}, sampler=RandomSampler(seed=3)
    )
    expected = [alone.ask().params["x"] for _ in range(N_TRIALS)]
    assert [r.params["x"] for r in records] == expected


def test_workers_killed_at_random_moments_lose_and_duplicate_nothing(tmp_path, write_study, worker_env):
    n_trials, kills, max_retries = 150, 6, 3
    db = tmp_path / "study.db"
    path = write_study(
        f"sqlite:///{db}",
        "parallel_objectives:short",
        f"n_trials: {n_trials}\nretry: {{max_retries: {max_retries}}}\nheartbeat: {{interval: 0.2, grace_period: 2}}\n",
    )
    log = tmp_path / "trials.log"
    log.touch()
    worker_env[LOG_ENV] = str(log)
    # Two workers run trials in their own process, one runs a pool of two trial processes.
    args = [(), (), ("--workers", "2")]
    workers = [start_worker(path, worker_env, *a) for a in args]
    rng = random.Random(11)
    while not log.read_text():
        time.sleep(0.1)
    killed = 0
    while killed < kills and all(w.poll() is None for w in workers):
        time.sleep(rng.uniform(0.1, 0.6))
        i = rng.randrange(len(workers))
        if workers[i].poll() is not None:
            break
        os.kill(workers[i].pid, signal.SIGKILL)
        workers[i].wait()
        killed += 1
        workers[i] = start_worker(path, worker_env, *args[i])
    results = [(w.wait(timeout=180), w.stderr.read().decode()) for w in workers]

    assert killed >= 3, "the study ended before the workers could be killed; make trials longer"
    assert [code for code, _ in results] == [0] * len(workers), "\n".join(err for _, err in results)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    records = lmtune.load_study("par", f"sqlite:///{db}").trials
    states = Counter(r.state for r in records)
    assert set(states) <= {TrialState.COMPLETE, TrialState.FAILED}, states  # nothing stuck RUNNING or WAITING
    lost = [r for r in records if r.state is TrialState.FAILED]
    assert all(r.failure_reason.startswith("worker lost") for r in lost), [r.failure_reason for r in lost]
    # Exactly n_trials finished, unless a retry was enqueued while another worker filled the lost trial's slot.
    assert n_trials <= states[TrialState.COMPLETE] <= n_trials + len(lost)
    assert [r.number for r in records] == list(range(len(records)))
    # No trial ran twice; a retry is a new trial that names the one it replaces.
    assert max(_starts(log).values()) == 1
    retried = Counter(r.system_attrs["retry_of"] for r in records if "retry_of" in r.system_attrs)
    assert max(retried.values(), default=1) == 1
    by_number = {r.number: r for r in records}
    assert all(by_number[n].state is TrialState.FAILED for n in retried)
    # A retry reruns its trial's configuration (a trial killed before its parameters were stored has none to keep).
    assert all(
        by_number[n].params == r.params
        for r in records
        for n in [r.system_attrs.get("retry_of")]
        if n is not None and by_number[n].params
    ), [
        (r.number, r.params, by_number[r.system_attrs["retry_of"]].params)
        for r in records
        if "retry_of" in r.system_attrs
    ]


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its parent does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_a_killed_pool_worker_leaves_no_trial_process_and_the_study_finishes(
    tmp_path, write_study, worker_env
):
    db = tmp_path / "study.db"
    path = write_study(
        f"sqlite:///{db}",
        "parallel_objectives:hangs_on_first_attempt",
        "n_trials: 4\nretry: {max_retries: 1}\nheartbeat: {interval: 0.2, grace_period: 2}\n",
    )
    log = tmp_path / "trials.log"
    log.touch()
    worker_env[LOG_ENV] = str(log)
    worker = start_worker(path, worker_env, "--workers", "2")
    deadline = time.monotonic() + 60
    while len(log.read_text().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    hung = [int(line.split()[1]) for line in log.read_text().splitlines()]
    assert len(hung) == 2 and all(_alive(pid) for pid in hung), log.read_text()

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in hung) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in hung), "a trial process outlived the worker that launched it"

    replacement = start_worker(path, worker_env, "--workers", "2")
    assert replacement.wait(timeout=120) == 0, replacement.stderr.read().decode()
    records = lmtune.load_study("par", f"sqlite:///{db}").trials
    states = Counter(r.state for r in records)
    assert states[TrialState.COMPLETE] == 4 and states[TrialState.FAILED] == 2, states
    assert all(r.failure_reason.startswith("worker lost") for r in records if r.state is TrialState.FAILED)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_a_trial_past_its_timeout_is_failed_even_when_its_launcher_cannot(tmp_path, write_study, worker_env):
    db = tmp_path / "study.db"
    path = write_study(
        f"sqlite:///{db}", "parallel_objectives:hangs_on_first_attempt", "n_trials: 2\ntrial_timeout: 1\n"
    )
    log = tmp_path / "trials.log"
    log.touch()
    worker_env[LOG_ENV] = str(log)
    worker = start_worker(path, worker_env, "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        while len(log.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGSTOP)  # the launcher can no longer kill its trials
        hung = [int(line.split()[1]) for line in log.read_text().splitlines()]
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in hung) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in hung), "a trial outlived its timeout"
        records = lmtune.load_study("par", f"sqlite:///{db}").trials
        assert [r.state for r in records] == [TrialState.FAILED, TrialState.FAILED]
        assert all(r.failure_reason.startswith("timeout") for r in records)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
