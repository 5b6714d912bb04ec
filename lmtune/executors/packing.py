"""Automatic packing: how many trials to place on one GPU (``resources: {gpus_per_trial: auto}``).

Small models leave most of a GPU idle, so several trials share it; but past some number, more trials only
slice the same arithmetic thinner. The decision is a pure function of measurements — for each number of trials
tried, their aggregate optimizer steps per second and their peak memory — so it is tested on recorded figures:
:func:`next_level` says which number to try next (doubling from one, within memory), :func:`choose_packing` picks
the number to keep. :func:`measure` takes one measurement on the running device (torch imported only there).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lmtune.exceptions import ConfigError

__all__ = ["Measurement", "PackingDecision", "choose_packing", "measure", "next_level"]


@dataclass(frozen=True)
class Measurement:
    """``trials`` sharing one GPU made ``steps_per_second`` optimizer steps per second in all, using
    ``peak_bytes`` of GPU memory at most (all trials together)."""

    trials: int
    steps_per_second: float
    peak_bytes: int

    def __post_init__(self) -> None:
        if self.trials < 1 or not self.steps_per_second > 0 or self.peak_bytes < 0:
            raise ConfigError(f"a packing measurement needs trials >= 1, steps_per_second > 0 and peak_bytes >= 0, "
                              f"got {self}")


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


def next_level(measurements: Sequence[Measurement], gpu_bytes: int, *, min_gain: float = 0.05,
               headroom: float = 0.9, max_trials: int = 64) -> int | None:
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


def choose_packing(measurements: Sequence[Measurement], gpu_bytes: int, *, min_gain: float = 0.05,
                   headroom: float = 0.9) -> PackingDecision:
    """The fewest trials per GPU whose throughput is within ``min_gain`` of the best measured that fits.

    Fewer trials for (nearly) the same throughput means each trial finishes sooner, so the scheduler learns
    earlier which trials to stop.
    """
    if not measurements:
        raise ConfigError("choose_packing needs at least one measurement (the first trial's steps)")
    fitting = [m for m in measurements if _fits(m.trials, measurements, gpu_bytes, headroom)]
    if not fitting:
        smallest = min(measurements, key=lambda m: m.trials)
        return PackingDecision(smallest.trials, smallest.steps_per_second,
                               f"even {smallest.trials} trial(s) use more than {headroom:.0%} of the GPU memory")
    best = max(fitting, key=lambda m: m.steps_per_second)
    enough = [m for m in fitting if m.steps_per_second >= best.steps_per_second / (1 + min_gain)]
    chosen = min(enough, key=lambda m: m.trials)
    gain = chosen.steps_per_second / min(fitting, key=lambda m: m.trials).steps_per_second
    return PackingDecision(chosen.trials, chosen.steps_per_second,
                           f"{chosen.trials} trial(s) per GPU make {chosen.steps_per_second:.1f} steps/s "
                           f"({gain:.1f}x one trial); more added less than {min_gain:.0%}")


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
