"""The local process pool: N trials at once on one machine, each in its own freshly spawned process.

A process per trial means a crashing or leaking trial cannot take the study down and its GPU memory is returned
when it ends. GPUs are handed out through ``CUDA_VISIBLE_DEVICES`` (see :mod:`lmtune.executors.gpus`); a trial with
several processes (``gpus_per_trial: 2``) is launched like ``torchrun`` (see :mod:`lmtune.executors.distributed`).
Each child dies with its worker (a killed worker leaves no orphan training), runs in its own process group so a
timeout kills everything it started, and Ctrl-C reaches only the pool, which fails its trials "interrupted".
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import time
from collections.abc import Sequence

from lmtune.executors.distributed import rank_environments
from lmtune.executors.gpus import GpuSlots, detect_gpus
from lmtune.executors.packing import AutoPacker, PackedTrial, Probe, StorageProbe
from lmtune.executors.processes import Launched, ProcessExecutor
from lmtune.executors.ref import FileObjective, StudyRef
from lmtune.executors.settings import Resources
from lmtune.executors.trial_process import run_spawned
from lmtune.storage import get_storage
from lmtune.storage.base import Storage
from lmtune.trial import Trial

__all__ = ["LocalExecutor", "describe_exit", "forkserver_modules"]

logger = logging.getLogger("lmtune")


def describe_exit(code: int) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def forkserver_modules(objective: object) -> list[str]:
    """What the pool's fork server imports before it forks trial processes: the trial process's own module and
    what loading the objective needs (for a study file's ``task:``, torch, transformers and the NLP package).

    A fresh process per trial is forked from that server, which was spawned clean (no threads, no CUDA, no open
    database): as isolated as a spawned process, without paying the interpreter start and these imports for every
    trial. None of these imports starts a thread or touches CUDA, so each trial still sets ``CUDA_VISIBLE_DEVICES``
    before CUDA starts. The server is started once per process, with the modules of the first pool run in it.
    """
    preload = objective.preload() if isinstance(objective, FileObjective) else ()
    return ["lmtune.executors.trial_process", *preload]


class LocalExecutor(ProcessExecutor):
    """Run up to ``workers`` trials at once in spawned processes on this machine.

    ``workers`` None: as many as the GPU slots allow, else one. ``resources.gpus_per_trial`` None leaves the GPUs
    each trial sees alone; 0 hides them; otherwise each trial gets its share (read from ``nvidia-smi -L``, torch,
    or ``LMTUNE_FAKE_GPUS``). ``resources.auto_packing`` (``gpus_per_trial: auto``) starts with one trial per GPU
    and raises the number while measured throughput rises (:class:`lmtune.executors.packing.AutoPacker`, measuring
    through ``packing_probe``, by default a :class:`~lmtune.executors.packing.StorageProbe`); ``workers`` then caps
    the trials running at once. ``trial_timeout`` (seconds) kills and fails a trial that runs longer.
    """

    def __init__(
        self,
        workers: int | None = None,
        resources: Resources | None = None,
        trial_timeout: float | None = None,
        packing_probe: Probe | None = None,
    ) -> None:
        super().__init__(trial_timeout)
        self.workers = workers
        self.resources = resources if resources is not None else Resources()
        self.packing_probe = packing_probe
        self._slots: GpuSlots | None = None
        self.packer: AutoPacker | None = None
        self._storage: Storage | None = None
        self._context = multiprocessing.get_context("forkserver")

    def _start(self, ref: StudyRef) -> int:
        self._context.set_forkserver_preload(forkserver_modules(ref.objective))
        gpus = self.resources.gpus_per_trial
        if gpus:
            ids, found_by = detect_gpus()
            self._slots = GpuSlots(ids, gpus, found_by)
        elif self.resources.auto_packing:
            return self._start_packing(ref)
        if self.workers is not None:
            return self.workers
        return self._slots.capacity if self._slots is not None else 1

    def _start_packing(self, ref: StudyRef) -> int:
        """``gpus_per_trial: auto``: one trial per GPU to begin with, raised by the packer as measured."""
        ids, found_by = detect_gpus()
        if not ids:
            logger.info("resources.gpus_per_trial: auto: no GPU found (%s); one trial per worker", found_by)
            return self.workers if self.workers is not None else 1
        self._slots = GpuSlots(ids, 1, found_by)
        limit = AutoPacker.DEFAULT_MAX_PER_GPU
        if self.workers is not None:
            limit = max(1, self.workers // len(ids))
        probe = self.packing_probe if self.packing_probe is not None else StorageProbe()
        self.packer = AutoPacker(self._slots, probe, max_per_gpu=limit)
        self._storage = get_storage(ref.storage)
        return len(ids) * limit

    def _shutdown(self) -> None:
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    def _has_room(self) -> bool:
        if self._slots is None:
            return True
        gpus = self._slots.acquire()
        if gpus is None:
            return False
        self._slots.release(gpus)
        return True

    def _launch(self, ref: StudyRef, trial: Trial) -> Launched:
        gpus: list[str] | None = None
        if self._slots is not None:
            gpus = self._slots.acquire()
        elif self.resources.gpus_per_trial == 0:
            gpus = []
        # Pickled here and unpickled in the child once its environment is set, before the objective's module
        # is imported.
        payload = pickle.dumps((ref, trial.trial_id, trial.presuggested))
        # The lifeline: only this process holds its writing end, so the children read end-of-file the moment it
        # ends, however it ends (their parent is the fork server, which may outlive it).
        lifeline, keep = self._context.Pipe(duplex=False)
        processes = []
        for rank, env in enumerate(rank_environments(self.resources.processes, gpus)):
            process = self._context.Process(
                target=run_spawned,
                args=(payload, env, rank, lifeline, self.trial_timeout),
                name=f"lmtune-trial-{trial.number}-rank{rank}",
            )
            process.start()
            processes.append(process)
        lifeline.close()
        return Launched(
            trial.trial_id, trial.number, time.monotonic(), processes, {"gpus": gpus, "lifeline": keep}
        )

    def _wait(self, running: Sequence[Launched], timeout: float) -> list[tuple[Launched, str | None]]:
        if self.packer is not None and self._storage is not None:
            trials = [
                PackedTrial(r.trial_id, r.handle[0].pid, r.extra["gpus"][0])
                for r in running
                if r.extra.get("gpus")
            ]
            self.packer.update(self._storage, trials, time.time())
        sentinels = [p.sentinel for launched in running for p in launched.handle]
        multiprocessing.connection.wait(sentinels, timeout)
        ended = []
        for launched in running:
            codes = [p.exitcode for p in launched.handle]
            broken = [(rank, code) for rank, code in enumerate(codes) if code not in (None, 0)]
            if broken or all(code is not None for code in codes):
                self._kill(launched)  # the other ranks of a broken trial would wait for it forever
                death = None
                if broken:
                    rank, code = broken[0]
                    death = describe_exit(code) + (f" (rank {rank})" if len(codes) > 1 else "")
                ended.append((launched, death))
        return ended

    def _kill(self, launched: Launched) -> None:
        for process in launched.handle:
            if process.exitcode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)  # its group: whatever the trial started too
                process.kill()
        for process in launched.handle:
            process.join(timeout=10)
        lifeline = launched.extra.pop("lifeline", None)
        if lifeline is not None:
            lifeline.close()
        gpus = launched.extra.pop("gpus", None)
        if gpus and self._slots is not None:
            self._slots.release(gpus)
