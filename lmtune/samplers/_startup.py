"""Start-up points of model-based samplers: a scrambled Sobol sequence indexed by trial number, tilted by priors.

Point ``n`` of one sequence per (seed, dimension) covers the space more evenly than independent draws, and depends
only on the trial number, so workers agree without talking to each other.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import qmc

from lmtune.samplers._prior import UnitPrior

__all__ = ["startup_point"]


def startup_point(
    seed: int, dim: int, index: int, prior: UnitPrior | None, rng: np.random.Generator
) -> np.ndarray:
    """Point ``index`` of the scrambled Sobol sequence of ``seed`` in ``[0, 1]^dim``, with prior draws mixed in."""
    engine = qmc.Sobol(dim, scramble=True, seed=np.random.default_rng([seed, dim, 7]))
    with warnings.catch_warnings():
        # Balance warnings are about sample sizes that are not powers of two: irrelevant one point at a time.
        warnings.simplefilter("ignore", UserWarning)
        if index > 0:
            engine.fast_forward(index)
        point = engine.random(1)
    if prior is not None:
        prior.sample_into(point, rng)
    return point[0]
