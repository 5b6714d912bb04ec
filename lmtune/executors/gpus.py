"""GPU slots of one machine: which GPUs exist and which trial uses which, handed out via CUDA_VISIBLE_DEVICES.

A fractional ``gpus_per_trial`` (0.25) puts several trials on one GPU (four here), spreading trials over the
least-loaded GPUs first; a whole number gives each trial that many GPUs of its own.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import subprocess

from lmtune.exceptions import ConfigError

__all__ = ["FAKE_GPUS_ENV", "GpuSlots", "detect_gpus"]

FAKE_GPUS_ENV = "LMTUNE_FAKE_GPUS"  # pretend this many GPUs exist (tests and dry runs on CPU machines)


def _count_physical() -> tuple[int, str]:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            return sum(line.startswith("GPU ") for line in out.stdout.splitlines()), "nvidia-smi -L"
    if importlib.util.find_spec("torch") is not None:
        import torch

        return int(torch.cuda.device_count()), "torch.cuda.device_count()"
    return 0, "no nvidia-smi and no torch"


def detect_gpus() -> tuple[list[str], str]:
    """The GPU ids trials may use, and how they were found.

    ``LMTUNE_FAKE_GPUS=N`` pretends N GPUs exist; otherwise an existing ``CUDA_VISIBLE_DEVICES`` limits the pool to
    those devices, else ``nvidia-smi -L`` (or torch) counts them.
    """
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake is not None:
        if not fake.strip().isdigit():
            raise ConfigError(f"{FAKE_GPUS_ENV} must be a number of GPUs such as 4, but got {fake!r}")
        return [str(i) for i in range(int(fake))], f"{FAKE_GPUS_ENV}={fake}"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
        if any(d.startswith("-") for d in ids):  # "-1" hides every GPU
            ids = []
        return ids, f"CUDA_VISIBLE_DEVICES={visible}"
    count, how = _count_physical()
    return [str(i) for i in range(count)], how


class GpuSlots:
    """Hands out GPUs to trials. Not thread-safe: one executor loop owns it."""

    def __init__(self, gpu_ids: list[str], gpus_per_trial: float, found_by: str = "") -> None:
        if gpus_per_trial <= 0:
            raise ValueError("GpuSlots needs gpus_per_trial > 0")
        need = math.ceil(gpus_per_trial)
        if need > len(gpu_ids):
            found = f" (found by {found_by})" if found_by else ""
            raise ConfigError(
                f"`resources.gpus_per_trial` is {gpus_per_trial:g}, but this machine has {len(gpu_ids)} GPU(s)"
                f"{found}; lower it, or remove `resources` to run on the CPU"
            )
        self.gpu_ids = list(gpu_ids)
        self.gpus_per_trial = gpus_per_trial
        # Trials one GPU holds: 1/0.25 = 4; the epsilon keeps 1/(1/3) at 3.
        self.per_gpu = max(1, math.floor(1 / gpus_per_trial + 1e-9)) if gpus_per_trial < 1 else 1
        self._load = {gpu: 0 for gpu in self.gpu_ids}

    @property
    def capacity(self) -> int:
        """How many trials can hold GPUs at once."""
        if self.gpus_per_trial < 1:
            return len(self.gpu_ids) * self.per_gpu
        return len(self.gpu_ids) // int(self.gpus_per_trial)

    def set_per_gpu(self, trials: int) -> None:
        """Let ``trials`` trials share each GPU from now on (automatic packing); trials above it keep running."""
        self.gpus_per_trial = 1.0 / trials
        self.per_gpu = trials

    def acquire(self) -> list[str] | None:
        """GPUs for one more trial, or None when all are taken."""
        if self.gpus_per_trial < 1:
            gpu = min(self.gpu_ids, key=lambda g: self._load[g])  # the least-loaded GPU, first one on ties
            if self._load[gpu] >= self.per_gpu:
                return None
            self._load[gpu] += 1
            return [gpu]
        free = [g for g in self.gpu_ids if self._load[g] == 0]
        need = int(self.gpus_per_trial)
        if len(free) < need:
            return None
        for gpu in free[:need]:
            self._load[gpu] = 1
        return free[:need]

    def release(self, gpus: list[str]) -> None:
        for gpu in gpus:
            self._load[gpu] -= 1
