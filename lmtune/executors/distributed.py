"""Data-parallel trials: one trial as several processes, launched the way ``torchrun`` launches them.

Each process of a trial gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``, and sees the trial's GPUs (it uses GPU ``LOCAL_RANK``), so ``torch.distributed.init_process_group()``
works unchanged (NCCL on GPUs, gloo on the CPU). Rank 0 holds the trial: it reports and its return value is the
trial's value. The other ranks get a :class:`ReplicaTrial` with the same parameters whose reports are dropped, so an
objective that runs on every rank records each step once. The scheduler answers rank 0 only: a data-parallel
objective shares rank 0's ``should_stop()`` with the others (one ``all_reduce`` of a flag) before acting on it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from lmtune.checkpoints import checkpoint_folder
from lmtune.space import Distribution
from lmtune.trial import Trial

__all__ = [
    "ReplicaTrial",
    "data_parallel",
    "is_main_process",
    "rank",
    "rank_environments",
    "shared_flag",
    "world_size",
]


def rank() -> int:
    """This process's rank in its trial (0 when the trial is a single process)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes the trial runs (1 unless it is data-parallel)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    return rank() == 0


def data_parallel(model: Any) -> Any:
    """For a training loop: in a trial of several processes, join the process group (NCCL when this process
    has a GPU, else gloo) and wrap ``model`` in ``DistributedDataParallel``; in a one-process trial return
    ``model`` unchanged. torch is imported only here."""
    if world_size() <= 1:
        return model
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        device = int(os.environ.get("LOCAL_RANK", "0"))
        return DistributedDataParallel(model.to(device), device_ids=[device])
    return DistributedDataParallel(model)


def shared_flag(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (e.g. ``trial.should_stop()``, which only rank 0 learns from the
    scheduler); the flag itself in a one-process trial."""
    if world_size() <= 1:
        return flag
    import torch
    import torch.distributed as dist

    value = torch.tensor([float(flag) if rank() == 0 else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.broadcast(value, src=0)
    return bool(value.item())


def free_port() -> int:
    """A TCP port that was free a moment ago on this machine (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rank_environments(processes: int, gpus: list[str] | None) -> list[dict[str, str]]:
    """The environment of each process of one trial: torchrun's variables for several processes, and the trial's
    GPUs (``gpus`` None: leave CUDA_VISIBLE_DEVICES as it is; an empty list hides every GPU)."""
    common: dict[str, str] = {}
    if gpus is not None:
        common["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    if processes == 1:
        return [common]
    common.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port()),
            "WORLD_SIZE": str(processes),
            "LOCAL_WORLD_SIZE": str(processes),
        }
    )
    return [{**common, "RANK": str(r), "LOCAL_RANK": str(r)} for r in range(processes)]


class ReplicaTrial(Trial):
    """The trial as a rank other than 0 sees it: same number, parameters and budget; reports and attributes are
    not recorded (rank 0 records them), and nothing is written to storage."""

    def report(self, value: float, step: int) -> None:
        """Dropped: rank 0 reports the trial's values."""

    def set_user_attr(self, key: str, value: Any) -> None:
        """Dropped: rank 0 records attributes."""

    def _suggest(self, name: str, dist: Distribution) -> Any:
        if name not in self._params:
            # Rank 0 draws the same value: suggestions are keyed by (seed, trial number, name).
            self._params[name] = self._draw(name, dist)
            self._distributions[name] = dist
        return self._params[name]

    @property
    def checkpoint_dir(self) -> Any:
        """Rank 0's checkpoint folder; only rank 0 writes into it by convention."""
        return checkpoint_folder(self._study.checkpoint_root, self.number)


def replica_of(study: Any, trial_id: int, presuggested: Mapping[str, Any] | None) -> ReplicaTrial:
    """A read-only handle on the trial rank 0 runs."""
    return ReplicaTrial(study, study.storage.get_trial(trial_id), presuggested)
