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


def _die_with(parent_pid: int) -> None:
    """End this process when its parent ends (the pool's fork server, which ends with the pool), so a killed
    worker leaves no trial running."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:  # other systems, and a parent that died before prctl took effect
        while True:
            if os.getppid() != parent_pid:
                os._exit(137)
            time.sleep(1.0)

    threading.Thread(target=watch, name="lmtune-parent-watch", daemon=True).start()


def run_spawned(payload: bytes, env: Mapping[str, str], rank: int) -> None:
    """Entry point of a pool child: its own process group (the pool kills the whole group on timeout; Ctrl-C
    reaches only the pool), tied to its parent's life, its environment (GPUs, ranks) set before the objective's
    module is imported, then the trial. ``payload`` is the pickled (StudyRef, trial id, presuggested)."""
    _die_with(os.getppid())
    with contextlib.suppress(OSError):
        os.setsid()
    os.environ.update(env)
    ref, trial_id, presuggested = pickle.loads(payload)
    run_in_this_process(ref, trial_id, presuggested, rank)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the outcome is stored, and a trial's leftover threads must not hold the slot.
    os._exit(0)
