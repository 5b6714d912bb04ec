"""User priors in the unit-cube encoding, in the spirit of piBO (Hvarfner et al., ICLR 2022).

A prior ``(value, confidence c)`` on one parameter becomes the density, relative to uniform,
``pi(u) = c * N_[0,1](u; to_unit(value), sigma(c)) + (1 - c)`` for numeric parameters and
``pi(k) = c * K * [k == value] + (1 - c)`` for a categorical with ``K`` choices. The uniform part keeps every point
reachable, so a wrong prior costs early trials but cannot trap the search; samplers weight ``log pi`` by
``beta / n`` (n = finished trials), so the data takes over as the study grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from lmtune.samplers._observations import DimensionKinds
from lmtune.space import SearchSpace

__all__ = ["UnitPrior", "prior_weight", "unit_prior"]

_SQRT_2PI = math.sqrt(2 * math.pi)


def _sigma(confidence: np.ndarray) -> np.ndarray:
    """Width in unit-cube coordinates: 0.05 at full confidence, 0.25 as confidence goes to 0."""
    return 0.05 + 0.2 * (1.0 - confidence)


def prior_weight(beta: float, n_finished: int) -> float:
    """The exponent of the prior in an acquisition after ``n_finished`` trials: ``beta / max(n, 1)``."""
    return beta / max(n_finished, 1)


@dataclass(frozen=True)
class UnitPrior:
    """The priors of a space's dimensions (only those that have one)."""

    dims: np.ndarray
    centre: np.ndarray
    sigma: np.ndarray
    confidence: np.ndarray
    choices: np.ndarray  # number of choices for categorical dimensions, 0 for numeric ones

    def _numeric_density(self, u: np.ndarray, k: int) -> np.ndarray:
        m, s = self.centre[k], self.sigma[k]
        z_mass = ndtr((1.0 - m) / s) - ndtr(-m / s)
        return np.exp(-0.5 * ((u - m) / s) ** 2) / (s * _SQRT_2PI * z_mass)

    def _density(self, u: np.ndarray, k: int) -> np.ndarray:
        c = self.confidence[k]
        if self.choices[k]:
            n = self.choices[k]
            same = np.floor(u * n) == np.floor(self.centre[k] * n)
            return c * n * same + (1.0 - c)
        return c * self._numeric_density(u, k) + (1.0 - c)

    def log_density(self, points: np.ndarray) -> np.ndarray:
        """``sum_j log pi_j(u_j)`` for each row of ``points`` (n, d); inactive (NaN) coordinates add nothing."""
        total = np.zeros(len(points))
        for k, j in enumerate(self.dims):
            u = points[:, j]
            active = ~np.isnan(u)
            total[active] += np.log(self._density(u[active], k))
        return total

    def grad_log_density(self, points: np.ndarray) -> np.ndarray:
        """d log pi / d u for numeric dimensions (zero elsewhere), for rows of ``points`` without NaN."""
        grad = np.zeros_like(points)
        for k, j in enumerate(self.dims):
            if self.choices[k]:
                continue
            u = points[:, j]
            c = self.confidence[k]
            normal = self._numeric_density(u, k)
            grad[:, j] = c * normal * (-(u - self.centre[k]) / self.sigma[k] ** 2) / (c * normal + 1.0 - c)
        return grad

    def sample_into(self, points: np.ndarray, rng: np.random.Generator) -> None:
        """Draw whole rows from the prior: dimension ``k`` of a row comes from its prior when the row's uniform
        draw is below ``confidence[k]`` (in place). Other rows stay as they are, so with confidence 0.5 half the
        start-up trials still fill the space, whatever the prior says."""
        n = len(points)
        row_draw = rng.random(n)
        for k, j in enumerate(self.dims):
            use = row_draw < self.confidence[k]
            draws = rng.random(n)
            if self.choices[k]:
                value = self.centre[k]
            else:
                m, s = self.centre[k], self.sigma[k]
                lo, hi = ndtr(-m / s), ndtr((1.0 - m) / s)
                value = np.clip(m + s * ndtri(lo + draws * (hi - lo)), 0.0, 1.0)
            points[use, j] = value if np.ndim(value) == 0 else value[use]


def unit_prior(space: SearchSpace, kinds: DimensionKinds) -> UnitPrior | None:
    """The priors of ``space`` (whose dimensions are ``kinds``) in unit coordinates; None when there are none."""
    dims, centre, confidence, choices = [], [], [], []
    for j, name in enumerate(space):
        prior = space[name].prior
        if prior is None:
            continue
        dims.append(j)
        centre.append(space[name].to_unit(prior.value))
        confidence.append(float(prior.confidence))
        choices.append(int(kinds.bins[j]) if kinds.categorical[j] else 0)
    if not dims:
        return None
    conf = np.array(confidence)
    return UnitPrior(np.array(dims), np.array(centre), _sigma(conf), conf, np.array(choices))
