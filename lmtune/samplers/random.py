"""Uniform random search (log-uniform on log scales)."""

from __future__ import annotations

from typing import Any

from lmtune.history import TrialHistory
from lmtune.samplers.base import Sampler
from lmtune.space import SearchSpace

__all__ = ["RandomSampler"]


class RandomSampler(Sampler):
    """Draws each trial independently and uniformly in the unit-cube encoding of the space."""

    needs_history = False

    def suggest(self, space: SearchSpace, history: TrialHistory, trial_number: int) -> dict[str, Any]:
        point = self.rng(trial_number).random(len(space))
        return space.from_unit(point)
