"""The Ray executor: each trial runs as a Ray task in Ray's worker processes, on any machine of a Ray cluster.

``executor: {name: ray, address: auto}`` joins a running cluster (``address`` omitted: a local Ray runtime is
started). Each task requests ``resources.cpus_per_trial`` CPUs and ``resources.gpus_per_trial`` GPUs, so Ray
places it and sets ``CUDA_VISIBLE_DEVICES``. The task reopens the study from its storage URL, so the storage must be
reachable from every node (PostgreSQL for a cluster; a SQLite file only on one machine) and stays the source of
truth: the driver keeps no trial only in memory. Ray does not re-run failed tasks (``max_retries=0``): a task that
dies fails its trial "worker lost", and the study's ``retry`` policy decides about a re-run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.executors.processes import Launched, ProcessExecutor
from lmtune.executors.ref import StudyRef
from lmtune.executors.settings import Resources
from lmtune.executors.trial_process import run_in_this_process
from lmtune.trial import Trial

__all__ = ["RayExecutor"]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("the ray executor needs Ray: pip install 'lmtune[ray]'") from None
    return ray


def _run_trial_task(ref: StudyRef, trial_id: int, presuggested: Mapping[str, Any]) -> None:
    """A Ray task: run one trial in this Ray worker process; its outcome goes to storage, not back to Ray."""
    run_in_this_process(ref, trial_id, presuggested)


class RayExecutor(ProcessExecutor):
    """Run trials as Ray tasks. ``workers``: trials at once (default: as many as the cluster's CPUs, or GPUs,
    hold at the requested resources per trial); ``address``: a cluster to join (``auto``: the one this machine
    belongs to); ``namespace``: the Ray namespace."""

    def __init__(
        self,
        workers: int | None = None,
        resources: Resources | None = None,
        trial_timeout: float | None = None,
        address: str | None = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(trial_timeout)
        self.workers = workers
        self.resources = resources if resources is not None else Resources()
        if self.resources.processes > 1:
            raise ConfigError(
                f"`resources.processes_per_trial` is {self.resources.processes}: data-parallel trials run on the "
                f"local executor (one machine); use executor: local, or one process per trial on Ray"
            )
        self.address = address
        self.namespace = namespace
        self._started_runtime = False
        self._task: Any = None

    def _start(self, ref: StudyRef) -> int:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, namespace=self.namespace)
            self._started_runtime = True
        gpus = self.resources.gpus_per_trial or 0
        cpus = self.resources.cpus_per_trial
        self._task = ray.remote(_run_trial_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        if self.workers is not None:
            return self.workers
        cluster = ray.cluster_resources()
        capacity = int(cluster.get("CPU", 1) // cpus) if cpus else 1
        if gpus:
            capacity = min(capacity, int(cluster.get("GPU", 0) // gpus))
            if capacity == 0:
                raise ConfigError(
                    f"`resources.gpus_per_trial` is {gpus:g}, but the Ray cluster has {cluster.get('GPU', 0):g} GPUs"
                )
        return max(1, capacity)

    def _launch(self, ref: StudyRef, trial: Trial) -> Launched:
        handle = self._task.remote(ref, trial.trial_id, trial.presuggested)
        return Launched(trial.trial_id, trial.number, time.monotonic(), handle)

    def _wait(self, running: Sequence[Launched], timeout: float) -> list[tuple[Launched, str | None]]:
        ray = _ray()
        handles = [launched.handle for launched in running]
        ray.wait(handles, num_returns=1, timeout=timeout)
        ready, _ = ray.wait(handles, num_returns=len(handles), timeout=0)
        ended = []
        for launched in running:
            if launched.handle not in ready:
                continue
            try:
                ray.get(launched.handle)
                death = None
            except Exception as exc:  # the worker process or its node died, or the task was cancelled
                death = f"died in Ray ({type(exc).__name__})"
            ended.append((launched, death))
        return ended

    def _kill(self, launched: Launched) -> None:
        _ray().cancel(launched.handle, force=True)

    def _shutdown(self) -> None:
        if self._started_runtime:
            _ray().shutdown()
            self._started_runtime = False
