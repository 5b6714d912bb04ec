"""The body of a trial process: reopen the study from storage, run one trial (or one rank of it), exit.

Used by the local pool (a spawned child per rank) and by the Ray executor (inside a Ray worker process).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from lmtune.executors.distributed import replica_of
from lmtune.executors.ref import StudyRef
from lmtune.lifecycle import run_trial
from lmtune.trial import PROCESS, TrialRecord

__all__ = ["run_in_this_process", "run_spawned"]

_PR_SET_PDEATHSIG = 1
_OPEN: dict[str, Any] = {}  # StudyRef token -> opened study, reused by the trials one Ray worker runs


def run_in_this_process(
    ref: StudyRef, trial_id: int, presuggested: Mapping[str, Any] | None, rank: int = 0
) -> TrialRecord | None:
    """Run trial ``trial_id`` here and record its outcome (rank 0); other ranks only take part in training."""
    study = _OPEN.get(ref.token)
    if study is None:
        study = _OPEN[ref.token] = ref.open()
    objective = ref.load_objective()
    if rank != 0:
        objective(replica_of(study, trial_id, presuggested))
        return None
    trial = study.adopt(trial_id, presuggested)
    study.storage.set_trial_system_attr(trial_id, PROCESS, {"host": socket.gethostname(), "pid": os.getpid()})
    return run_trial(study, objective, trial)


def _die_with(parent_pid: int, lifeline: Connection | None) -> None:
    """End this process, and whatever it started, when the worker that launched it ends. ``lifeline`` is a pipe
    whose writing end only the worker holds: end-of-file means the worker is gone, however it died. (The parent
    process is the pool's fork server, which may outlive the worker, so its death alone is not enough.)"""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def end() -> None:
        if os.getpgrp() == os.getpid():  # the leader of its own group: take the trial's children along
            with contextlib.suppress(OSError):
                os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(137)

    def watch_lifeline() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                lifeline.recv()  # type: ignore[union-attr]
        end()

    def watch_parent() -> None:  # no lifeline, and a parent that died before prctl took effect
        while True:
            if os.getppid() != parent_pid:
                end()
            time.sleep(1.0)

    target = watch_parent if lifeline is None else watch_lifeline
    threading.Thread(target=target, name="lmtune-worker-watch", daemon=True).start()


def run_spawned(
    payload: bytes, env: Mapping[str, str], rank: int, lifeline: Connection | None = None
) -> None:
    """Entry point of a pool child: its own process group (the pool kills the whole group on timeout; Ctrl-C
    reaches only the pool), tied to its worker's life through ``lifeline``, its environment (GPUs, ranks) set
    before the objective's module is imported, then the trial. ``payload`` is the pickled (StudyRef, trial id,
    presuggested)."""
    with contextlib.suppress(OSError):
        os.setsid()
    _die_with(os.getppid(), lifeline)
    os.environ.update(env)
    ref, trial_id, presuggested = pickle.loads(payload)
    run_in_this_process(ref, trial_id, presuggested, rank)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the outcome is stored, and a trial's leftover threads must not hold the slot.
    os._exit(0)
