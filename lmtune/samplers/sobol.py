"""Quasi-random search on a scrambled Sobol sequence (scipy's QMC): covers the space more evenly than random."""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
from scipy.stats import qmc

from lmtune.history import TrialHistory
from lmtune.samplers.base import Sampler
from lmtune.space import SearchSpace

__all__ = ["SobolSampler"]


class SobolSampler(Sampler):
    """Trial ``n`` takes point ``n`` of one scrambled Sobol sequence, so the result does not depend on which
    worker asks first. Parameters beyond the sequence's dimension or inactive ones are simply skipped."""

    needs_history = False

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._engines: dict[int, qmc.Sobol] = {}
        self._positions: dict[int, int] = {}
        self._lock = threading.Lock()

    def _point(self, dim: int, index: int) -> np.ndarray:
        with self._lock:
            engine = self._engines.get(dim)
            position = self._positions.get(dim, 0)
            if engine is None or index < position:
                engine = qmc.Sobol(dim, scramble=True, seed=np.random.default_rng([self.seed, dim]))
                position = 0
            with warnings.catch_warnings():
                # Balance warnings concern sample sizes that are not powers of two; irrelevant one point at a time.
                warnings.simplefilter("ignore", UserWarning)
                if index > position:
                    engine.fast_forward(index - position)
                point = engine.random(1)[0]
            self._engines[dim] = engine
            self._positions[dim] = index + 1
            return point

    def suggest(self, space: SearchSpace, history: TrialHistory, trial_number: int) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        return space.from_unit(self._point(len(space), trial_number))
