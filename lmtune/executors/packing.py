"""Automatic packing: how many trials to place on one GPU (``resources: {gpus_per_trial: auto}``).

Small models leave most of a GPU idle, so several trials share it; but past some number, more trials only
slice the same arithmetic thinner. The decision is a pure function of measurements — for each number of trials
tried, their aggregate optimizer steps per second and their peak memory — so it is tested on recorded figures:
:func:`next_level` says which number to try next (doubling from one, within memory), :func:`choose_packing` picks
the number to keep. :func:`measure` takes one measurement on the running device (torch imported only there).

The local pool applies them through :class:`AutoPacker`: it starts with one trial per GPU, asks a :class:`Probe`
for the aggregate throughput and memory once every GPU holds the current number of trials, raises the number
while :func:`next_level` says so, then keeps :func:`choose_packing`'s number. :class:`StorageProbe` (the default)
reads the ``train_progress`` attribute trials write through :class:`ProgressReport` and the memory ``nvidia-smi``
shows per process; tests give a probe that replays recorded figures.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lmtune.exceptions import ConfigError

if TYPE_CHECKING:
    from lmtune.executors.gpus import GpuSlots
    from lmtune.storage.base import Storage

__all__ = [
    "PROGRESS_ATTR",
    "AutoPacker",
    "Measurement",
    "PackedTrial",
    "PackingDecision",
    "Probe",
    "ProgressReport",
    "StorageProbe",
    "choose_packing",
    "measure",
    "next_level",
    "parse_compute_apps",
]

logger = logging.getLogger("lmtune")

PROGRESS_ATTR = "train_progress"  # user attribute: {"steps": ..., "time": Unix seconds, "peak_bytes": ...}
GIB = float(1 << 30)


@dataclass(frozen=True)
class Measurement:
    """``trials`` sharing one GPU made ``steps_per_second`` optimizer steps per second in all, using
    ``peak_bytes`` of GPU memory at most (all trials together)."""

    trials: int
    steps_per_second: float
    peak_bytes: int

    def __post_init__(self) -> None:
        if self.trials < 1 or not self.steps_per_second > 0 or self.peak_bytes < 0:
            raise ConfigError(
                f"a packing measurement needs trials >= 1, steps_per_second > 0 and peak_bytes >= 0, "
                f"got {self}"
            )


@dataclass(frozen=True)
class PackingDecision:
    """Trials per GPU to keep, the throughput measured there, and why."""

    trials: int
    steps_per_second: float
    reason: str


def _fits(trials: int, measurements: Sequence[Measurement], gpu_bytes: int, headroom: float) -> bool:
    """Whether ``trials`` fit, judged by the largest measurement's memory per trial."""
    largest = max(measurements, key=lambda m: m.trials)
    per_trial = largest.peak_bytes / largest.trials
    return trials * per_trial <= headroom * gpu_bytes


def next_level(
    measurements: Sequence[Measurement],
    gpu_bytes: int,
    *,
    min_gain: float = 0.05,
    headroom: float = 0.9,
    max_trials: int = 64,
) -> int | None:
    """The number of trials to measure next, or None when measuring is done.

    Starts at one and doubles while the last doubling raised the aggregate throughput by at least ``min_gain``
    (a fraction) and the next level fits in ``headroom`` of the GPU's memory; beyond the largest number that fits
    it tries that number once.
    """
    if not measurements:
        return 1
    ordered = sorted(measurements, key=lambda m: m.trials)
    last = ordered[-1]
    if len(ordered) >= 2 and last.steps_per_second < (1 + min_gain) * ordered[-2].steps_per_second:
        return None
    per_trial = last.peak_bytes / last.trials
    fit = max_trials if per_trial == 0 else min(max_trials, math.floor(headroom * gpu_bytes / per_trial))
    candidate = min(last.trials * 2, fit)
    return candidate if candidate > last.trials else None


def choose_packing(
    measurements: Sequence[Measurement], gpu_bytes: int, *, min_gain: float = 0.05, headroom: float = 0.9
) -> PackingDecision:
    """The fewest trials per GPU whose throughput is within ``min_gain`` of the best measured that fits.

    Fewer trials for (nearly) the same throughput means each trial finishes sooner, so the scheduler learns
    earlier which trials to stop.
    """
    if not measurements:
        raise ConfigError("choose_packing needs at least one measurement (the first trial's steps)")
    fitting = [m for m in measurements if _fits(m.trials, measurements, gpu_bytes, headroom)]
    if not fitting:
        smallest = min(measurements, key=lambda m: m.trials)
        return PackingDecision(
            smallest.trials,
            smallest.steps_per_second,
            f"even {smallest.trials} trial(s) use more than {headroom:.0%} of the GPU memory",
        )
    best = max(fitting, key=lambda m: m.steps_per_second)
    enough = [m for m in fitting if m.steps_per_second >= best.steps_per_second / (1 + min_gain)]
    chosen = min(enough, key=lambda m: m.trials)
    gain = chosen.steps_per_second / min(fitting, key=lambda m: m.trials).steps_per_second
    return PackingDecision(
        chosen.trials,
        chosen.steps_per_second,
        f"{chosen.trials} trial(s) per GPU make {chosen.steps_per_second:.1f} steps/s "
        f"({gain:.1f}x one trial), the fewest within {min_gain:.0%} of the best measured",
    )


def measure(step: Callable[[], object], trials: int, *, warmup: int = 3, steps: int = 10) -> Measurement:
    """Time ``step`` (one optimizer step of ``trials`` trials together, e.g. a fused group's step) after
    ``warmup`` steps, and read the GPU's peak memory when one is in use."""
    import torch

    cuda = torch.cuda.is_available()
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = int(torch.cuda.max_memory_allocated()) if cuda else 0
    return Measurement(trials, trials * steps / seconds, peak)


# Measuring running trials ---------------------------------------------------------------------------------------
class ProgressReport:
    """Writes a trial's progress to its user attribute ``train_progress`` at most every ``interval`` seconds:
    ``{"steps": optimizer steps this process ran, "time": Unix seconds, "peak_bytes": peak GPU memory}``, and where
    the trial stands when the caller says so (``step``, ``total_steps``, ``steps_per_epoch``).

    The local pool's ``gpus_per_trial: auto`` reads it to measure throughput; the fine-tuning runner writes it, and
    an objective with its own training loop calls :meth:`update` after each optimizer step.
    """

    def __init__(self, trial: Any, interval: float = 2.0) -> None:
        self.trial = trial
        self.interval = interval
        self._last: float | None = None

    def update(self, steps: int, peak_bytes: int = 0, **position: int) -> None:
        """``position`` adds where the trial stands (``step``, ``total_steps``, ``steps_per_epoch``), which the
        terminal progress shows."""
        now = time.time()
        if self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        self.trial.set_user_attr(
            PROGRESS_ATTR,
            {
                "steps": int(steps),
                "time": now,
                "peak_bytes": int(peak_bytes),
                **{k: int(v) for k, v in position.items()},
            },
        )


@dataclass(frozen=True)
class PackedTrial:
    """A running trial of the pool: its id, the pid of its (first) process, and the GPU it was given."""

    trial_id: int
    pid: int | None
    gpu: str


class Probe(Protocol):
    """Measures the trials running on the GPUs; injected into the local pool (tests replay recorded figures)."""

    def gpu_bytes(self) -> int | None:
        """Memory of one GPU in bytes (the smallest, with several), or None when unknown."""

    def measure(self, storage: Storage, trials: Sequence[PackedTrial], since: float) -> Measurement | None:
        """One GPU's aggregate steps/s and memory with ``trials`` running (all GPUs equally loaded since
        ``since``, Unix seconds), or None until there is enough to judge."""


def parse_compute_apps(text: str) -> dict[int, int]:
    """Bytes per pid from ``nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits``
    (memory in MiB; a pid on several GPUs is summed)."""
    used: dict[int, int] = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
            used[int(fields[0])] = used.get(int(fields[0]), 0) + int(fields[1]) * (1 << 20)
    return used


def _nvidia_smi(*args: str) -> str | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


class StorageProbe:
    """Measures from what trials store: each trial's ``train_progress`` (:class:`ProgressReport`) gives its steps/s
    between its first report after ``since + warmup`` and its latest, ``window`` seconds or more later; memory per
    trial is the larger of its reported peak and what ``nvidia-smi`` shows for its pid. One GPU's throughput is the
    mean steps/s of the measured trials times the trials on each GPU, so trials that end and are replaced during
    the window do not bias it."""

    def __init__(self, warmup: float = 10.0, window: float = 10.0) -> None:
        self.warmup = warmup
        self.window = window
        self._since: float | None = None
        self._first: dict[int, dict[str, Any]] = {}

    def gpu_bytes(self) -> int | None:
        text = _nvidia_smi("--query-gpu=memory.total", "--format=csv,noheader,nounits")
        sizes = [int(v) for v in (text or "").split() if v.isdigit()]
        return min(sizes) * (1 << 20) if sizes else None

    def measure(self, storage: Storage, trials: Sequence[PackedTrial], since: float) -> Measurement | None:
        if since != self._since:
            self._since, self._first = since, {}
        per_gpu = max(Counter(t.gpu for t in trials).values(), default=0)
        used = parse_compute_apps(
            _nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits") or ""
        )
        rates, peaks = [], []
        for trial in trials:
            progress = storage.get_trial(trial.trial_id).user_attrs.get(PROGRESS_ATTR)
            if not isinstance(progress, dict) or progress.get("time", 0) < since + self.warmup:
                continue
            first = self._first.setdefault(trial.trial_id, progress)
            seconds = progress["time"] - first["time"]
            if seconds >= self.window:
                rates.append((progress["steps"] - first["steps"]) / seconds)
                peaks.append(max(int(progress.get("peak_bytes", 0)), used.get(trial.pid or -1, 0)))
        if per_gpu == 0 or len(rates) < per_gpu or sum(rates) <= 0:
            return None
        return Measurement(per_gpu, per_gpu * sum(rates) / len(rates), per_gpu * max(peaks))


# Applying the decisions in the pool -----------------------------------------------------------------------------
class AutoPacker:
    """Raises the trials per GPU of ``slots`` step by step and keeps the best packing (``gpus_per_trial: auto``).

    The pool calls :meth:`update` while trials run. Once every GPU holds ``level`` trials, the probe measures them;
    :func:`next_level` says whether to try more (up to ``max_per_gpu``), and when it says no, :func:`choose_packing`
    sets the number kept. If no measurement comes for ``give_up_after`` seconds (trials that report no progress),
    the current number is kept. Every decision is logged with its figures.
    """

    DEFAULT_MAX_PER_GPU = 64

    def __init__(
        self,
        slots: GpuSlots,
        probe: Probe,
        *,
        max_per_gpu: int = DEFAULT_MAX_PER_GPU,
        give_up_after: float = 600.0,
        min_gain: float = 0.05,
        headroom: float = 0.9,
    ) -> None:
        self.slots, self.probe = slots, probe
        self.max_per_gpu, self.give_up_after = max(1, max_per_gpu), give_up_after
        self.min_gain, self.headroom = min_gain, headroom
        self.level = 1
        self.measurements: list[Measurement] = []
        self.decision: PackingDecision | None = None
        self._full_since: float | None = None
        known = probe.gpu_bytes()
        self.gpu_bytes = known if known else 1 << 62  # unknown: memory does not limit the packing
        slots.set_per_gpu(1)
        logger.info(
            "resources.gpus_per_trial: auto: starting with 1 trial per GPU on %d GPU(s) of %s; raising "
            "it while total steps/s rise and memory fits (at most %d per GPU)",
            len(slots.gpu_ids),
            f"{known / GIB:.1f} GiB" if known else "unknown memory (not limiting)",
            self.max_per_gpu,
        )

    def update(self, storage: Storage, trials: Sequence[PackedTrial], now: float) -> None:
        """Look at the running ``trials`` (``now``: Unix seconds) and move to the next packing when measured."""
        if self.decision is not None:
            return
        loads = Counter(t.gpu for t in trials)
        if any(loads[gpu] < self.level for gpu in self.slots.gpu_ids):
            self._full_since = None  # not every GPU holds the level yet (or a trial ended): measure from full
            return
        if self._full_since is None:
            self._full_since = now
        found = self.probe.measure(storage, trials, self._full_since)
        if found is None:
            if now - self._full_since > self.give_up_after:
                self._keep(
                    f"no throughput measured in {self.give_up_after:g} s with {self.level} trial(s) per GPU "
                    f"(do the trials write `{PROGRESS_ATTR}`? see ProgressReport)"
                )
            return
        self.measurements.append(found)
        following = next_level(
            self.measurements,
            self.gpu_bytes,
            min_gain=self.min_gain,
            headroom=self.headroom,
            max_trials=self.max_per_gpu,
        )
        logger.info(
            "resources.gpus_per_trial: auto: %d trial(s) per GPU make %.1f steps/s per GPU, %.2f GiB per "
            "trial; %s",
            found.trials,
            found.steps_per_second,
            found.peak_bytes / found.trials / GIB,
            f"trying {following}" if following is not None else "measuring done",
        )
        if following is None:
            self._keep(stopped=self._why_stopped())
        else:
            self.level, self._full_since = following, None
            self.slots.set_per_gpu(following)

    def _why_stopped(self) -> str:
        """Why :func:`next_level` ended the measuring: no gain, the ``workers`` cap, or memory."""
        ordered = sorted(self.measurements, key=lambda m: m.trials)
        last = ordered[-1]
        if len(ordered) >= 2 and last.steps_per_second < (1 + self.min_gain) * ordered[-2].steps_per_second:
            return f"{last.trials} per GPU added less than {self.min_gain:.0%} over {ordered[-2].trials}"
        if last.trials >= self.max_per_gpu:
            return f"{self.max_per_gpu} per GPU is the most the workers allow"
        return (
            f"more would not fit in {self.headroom:.0%} of {self.gpu_bytes / GIB:.1f} GiB at "
            f"{last.peak_bytes / last.trials / GIB:.2f} GiB per trial"
        )

    def _keep(self, why: str | None = None, stopped: str | None = None) -> None:
        if self.measurements:
            chosen = choose_packing(
                self.measurements, self.gpu_bytes, min_gain=self.min_gain, headroom=self.headroom
            )
            reason = f"{why}; {chosen.reason}" if why else f"{chosen.reason}; measuring stopped: {stopped}"
            self.decision = PackingDecision(chosen.trials, chosen.steps_per_second, reason)
        else:
            self.decision = PackingDecision(self.level, 0.0, why or "nothing measured")
        self.level = self.decision.trials
        self.slots.set_per_gpu(self.level)
        logger.info(
            "resources.gpus_per_trial: auto: keeping %d trial(s) per GPU: %s",
            self.level,
            self.decision.reason,
        )
