"""The Parzen estimator of TPE: a weighted mixture of product kernels on the unit cube, vectorised with numpy.

Each kernel is centred on one observation. Per dimension it is a normal truncated to [0, 1] (integrated over the
bin for discrete numeric dimensions) or, for a categorical, a distribution that puts ``1 - eps`` on the observed
choice and spreads ``eps`` uniformly. A NaN centre (the parameter was inactive in that trial) makes that kernel
uniform in that dimension, so a conditional parameter is modelled only by the trials where it was active; a NaN
coordinate of a query point (inactive there) contributes nothing.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from lmtune.samplers._observations import DimensionKinds

__all__ = ["ParzenEstimator"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SIGMA0 = 0.2  # bandwidth scale of the multivariate rule sigma = 0.2 * n ** (-1 / (d + 4)), unit-cube widths


class ParzenEstimator:
    """A mixture over ``centres`` (k, d) with ``weights`` (k,); a row of NaN is the uniform (prior) kernel."""

    def __init__(self, centres: np.ndarray, weights: np.ndarray, kinds: DimensionKinds) -> None:
        self.centres = centres
        self.log_weights = np.log(weights / weights.sum())
        self.kinds = kinds
        k, d = centres.shape
        sigma = np.full(d, _SIGMA0 * max(k, 1) ** (-1.0 / (d + 4)))
        bins = kinds.bins.astype(float)
        discrete = bins > 0
        # A discrete kernel narrower than half a bin would be a point mass: keep some spread across bins.
        sigma[discrete] = np.maximum(sigma[discrete], 0.5 / bins[discrete])
        self.sigma = sigma
        self.eps = np.minimum(1.0, 2.0 * sigma)  # categorical smoothing, shrinking like the bandwidth
        nan = np.isnan(centres)
        mu = np.where(nan, 0.5, centres)
        self._lo = ndtr(-mu / sigma)
        self._hi = ndtr((1.0 - mu) / sigma)
        self._log_mass = np.log(np.maximum(self._hi - self._lo, 1e-300))
        some_unknown = nan.any(axis=0)
        self._unknown = [nan[:, j] if some_unknown[j] else None for j in range(d)]
        self._centre_bins = np.floor(np.where(nan, 0.0, centres) * np.maximum(bins, 1.0)).astype(int)
        self._tables: dict[int, np.ndarray] = {}
        # Continuous dimensions at once: with a per-dimension bandwidth, the summed log kernel is quadratic in the
        # point, so three small matrix products give it for every (point, kernel) pair. A dimension where the
        # kernel's centre is unknown (uniform, log density 0) is masked out.
        self._continuous = np.flatnonzero(~discrete)
        cont = self._continuous
        known = (~nan[:, cont]).astype(float)
        m = np.where(nan[:, cont], 0.0, centres[:, cont])
        inv_var = 1.0 / sigma[cont] ** 2
        constant = -(_LOG_SQRT_2PI + np.log(sigma[cont]))[None, :] - self._log_mass[:, cont]
        self._cont_known_t = known.T
        self._cont_centre_t = (known * m * inv_var).T
        self._cont_rest_t = (known * (constant - 0.5 * m * m * inv_var)).T
        self._cont_inv_var = inv_var

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` points drawn from the mixture; discrete coordinates are bin centres."""
        k, d = self.centres.shape
        which = rng.choice(k, size=n, p=np.exp(self.log_weights))
        centres = self.centres[which]
        draws = rng.random((n, d))
        uniform = rng.random((n, d))
        lo, hi = self._lo[which], self._hi[which]
        mu = np.where(np.isnan(centres), 0.5, centres)
        out = np.clip(mu + self.sigma * ndtri(lo + draws * (hi - lo)), 0.0, 1.0)
        out = np.where(np.isnan(centres), uniform, out)
        bins = self.kinds.bins
        for j in np.flatnonzero(self.kinds.categorical):
            keep = (rng.random(n) >= self.eps[j]) & ~np.isnan(centres[:, j])
            out[:, j] = np.where(keep, centres[:, j], uniform[:, j])
        for j in np.flatnonzero(bins > 0):
            out[:, j] = (np.minimum(np.floor(out[:, j] * bins[j]), bins[j] - 1) + 0.5) / bins[j]
        return out

    def _dimension_log_pdf(self, u: np.ndarray, j: int) -> np.ndarray:
        """Log density of each kernel in dimension ``j`` at active coordinates ``u`` (m,): (m, k)."""
        n_bins = int(self.kinds.bins[j])
        c = self.centres[:, j]
        unknown = self._unknown[j]
        if n_bins > 0:
            # Query points and centres are both bin centres: the kernel mass depends on the bin offset only.
            offset = np.floor(u * n_bins).astype(int)[:, None] - self._centre_bins[:, j][None, :]
            value = self._offset_table(j, n_bins)[offset + n_bins - 1]
            if not self.kinds.categorical[j]:
                value = value - self._log_mass[:, j][None, :]
        else:
            z = (u[:, None] - np.where(np.isnan(c), 0.5, c)[None, :]) / self.sigma[j]
            value = (-0.5 * z * z) - (_LOG_SQRT_2PI + math.log(self.sigma[j])) - self._log_mass[:, j][None, :]
        if unknown is None:
            return value
        return np.where(unknown[None, :], -math.log(n_bins) if n_bins else 0.0, value)

    def _offset_table(self, j: int, n_bins: int) -> np.ndarray:
        """Log kernel mass at bin offsets ``-(n-1) .. n-1`` of dimension ``j`` (untruncated for numerics)."""
        table = self._tables.get(j)
        if table is None:
            offsets = np.arange(-(n_bins - 1), n_bins)
            if self.kinds.categorical[j]:
                eps = self.eps[j]
                table = np.where(offsets == 0, math.log(1.0 - eps + eps / n_bins), math.log(eps / n_bins))
            else:
                width = self.sigma[j] * n_bins
                mass = ndtr((offsets + 0.5) / width) - ndtr((offsets - 0.5) / width)
                table = np.log(np.maximum(mass, 1e-300))
            self._tables[j] = table
        return table

    def _continuous_log_pdf(self, points: np.ndarray) -> np.ndarray:
        """Summed log density of each kernel over the continuous dimensions at ``points``: (n, k); an inactive
        coordinate (NaN) contributes nothing."""
        u = points[:, self._continuous]
        active = ~np.isnan(u)
        u = np.where(active, u, 0.0)
        return (
            (-0.5 * u * u * self._cont_inv_var) @ self._cont_known_t
            + u @ self._cont_centre_t
            + active.astype(float) @ self._cont_rest_t
        )

    def log_pdf(self, points: np.ndarray) -> np.ndarray:
        """Log density of the mixture at each point (n,)."""
        total = self._continuous_log_pdf(points)
        for j in np.flatnonzero(self.kinds.bins > 0).tolist():
            active = ~np.isnan(points[:, j])
            if active.all():
                total += self._dimension_log_pdf(points[:, j], j)
            elif active.any():
                total[active] += self._dimension_log_pdf(points[active, j], j)
        return _logsumexp_rows(total + self.log_weights[None, :])

    def log_marginals(self, points: np.ndarray) -> np.ndarray:
        """Log density of each dimension's marginal at each point (n, d), for independent sampling."""
        out = np.zeros(points.shape)
        for j in range(points.shape[1]):
            active = ~np.isnan(points[:, j])
            if active.any():
                out[active, j] = _logsumexp_rows(
                    self._dimension_log_pdf(points[active, j], j) + self.log_weights[None, :]
                )
        return out


def _logsumexp_rows(values: np.ndarray) -> np.ndarray:
    top = values.max(axis=1)
    return top + np.log(np.exp(values - top[:, None]).sum(axis=1))
