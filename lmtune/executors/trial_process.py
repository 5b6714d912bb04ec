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
from typing import TYPE_CHECKING, Any

from lmtune.executors.distributed import replica_of
from lmtune.executors.processes import TIMEOUT_REASON
from lmtune.executors.ref import StudyRef
from lmtune.lifecycle import run_trial
from lmtune.trial import PROCESS, TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["run_in_this_process", "run_spawned"]

_PR_SET_PDEATHSIG = 1
OWN_TIMEOUT_MARGIN_S = (
    5.0  # how long after trial_timeout a trial process fails its trial, if its launcher did not
)
_OPEN: dict[str, Any] = {}  # StudyRef token -> opened study, reused by the trials one Ray worker runs


def run_in_this_process(
    ref: StudyRef,
    trial_id: int,
    presuggested: Mapping[str, Any] | None,
    rank: int = 0,
    trial_timeout: float | None = None,
) -> TrialRecord | None:
    """Run trial ``trial_id`` here and record its outcome (rank 0); other ranks only take part in training.

    ``trial_timeout`` (seconds, rank 0): the launcher kills the trial after it; should the launcher fail to (it is
    stopped, or cut off), the trial process fails the trial itself a little later and ends."""
    study = _OPEN.get(ref.token)
    if study is None:
        study = _OPEN[ref.token] = ref.open()
    objective = ref.load_objective()
    if rank != 0:
        objective(replica_of(study, trial_id, presuggested))
        return None
    trial = study.adopt(trial_id, presuggested)
    study.storage.set_trial_system_attr(trial_id, PROCESS, {"host": socket.gethostname(), "pid": os.getpid()})
    if trial_timeout is not None:  # counted from here, as the launcher counts
        _fail_when_overdue(study, trial_id, trial_timeout)
    return run_trial(study, objective, trial)


def _fail_when_overdue(study: Study, trial_id: int, limit: float) -> None:
    """Past ``limit`` plus a margin (the launcher's own kill comes first), fail the trial "timeout" and end this
    process and whatever it started."""

    def overdue() -> None:
        with contextlib.suppress(Exception):  # finished or failed meanwhile: nothing to record
            study.storage.finish_trial(trial_id, TrialState.FAILED, None, TIMEOUT_REASON.format(limit))
        _end_process_group()

    timer = threading.Timer(limit + max(OWN_TIMEOUT_MARGIN_S, 0.1 * limit), overdue)
    timer.daemon = True
    timer.start()


def _end_process_group() -> None:
    """End this process and, when it leads its own process group, everything the trial started."""
    if os.getpgrp() == os.getpid():
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(137)


def _die_with(parent_pid: int, lifeline: Connection | None) -> None:
    """End this process, and whatever it started, when the worker that launched it ends. ``lifeline`` is a pipe
    whose writing end only the worker holds: end-of-file means the worker is gone, however it died. (The parent
    process is the pool's fork server, which may outlive the worker, so its death alone is not enough.)"""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch_lifeline() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                lifeline.recv()  # type: ignore[union-attr]
        _end_process_group()

    def watch_parent() -> None:  # no lifeline, and a parent that died before prctl took effect
        while True:
            if os.getppid() != parent_pid:
                _end_process_group()
            time.sleep(1.0)

    target = watch_parent if lifeline is None else watch_lifeline
    threading.Thread(target=target, name="lmtune-worker-watch", daemon=True).start()


def run_spawned(
    payload: bytes,
    env: Mapping[str, str],
    rank: int,
    lifeline: Connection | None = None,
    trial_timeout: float | None = None,
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
    run_in_this_process(ref, trial_id, presuggested, rank, trial_timeout)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the outcome is stored, and a trial's leftover threads must not hold the slot.
    os._exit(0)
