"""A Gaussian process with a Matern 5/2 ARD kernel, written on numpy/scipy.

Hyperparameters (one length scale per parameter group, signal variance, noise variance) are fitted by L-BFGS-B on
the log marginal likelihood plus weak log-normal priors, with analytic gradients. The posterior gives the mean and
variance of the latent function and their gradients with respect to the input, for acquisition optimisation.
Inputs are features in [0, 1]; outputs are expected standardised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular
from scipy.optimize import minimize

__all__ = ["GPHyperparameters", "GPPosterior", "fit_hyperparameters"]

_SQRT5 = math.sqrt(5.0)
_LOG_LS_BOUNDS = (math.log(0.01), math.log(20.0))
_LOG_SIGNAL_BOUNDS = (math.log(0.05), math.log(20.0))
_LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(0.5))
_NOISE_PRIOR = (math.log(1e-3), 2.0)  # log-normal (mean of log, sd of log) of the noise variance
_SIGNAL_PRIOR = (0.0, 1.0)
_LS_PRIOR_SD = 1.0


@dataclass(frozen=True)
class GPHyperparameters:
    """Log length scales (one per group), log signal variance, log noise variance."""

    log_lengthscales: np.ndarray
    log_signal: float
    log_noise: float

    def to_vector(self) -> np.ndarray:
        return np.concatenate([self.log_lengthscales, [self.log_signal, self.log_noise]])

    @classmethod
    def from_vector(cls, theta: np.ndarray) -> GPHyperparameters:
        return cls(theta[:-2].copy(), float(theta[-2]), float(theta[-1]))


def _ls_prior_mean(n_groups: int) -> float:
    """Longer length scales in higher dimensions (as in dimension-scaled priors): 0.3 * sqrt(d) at the median."""
    return math.log(0.3 * math.sqrt(n_groups))


def _scaled_sqdist(a: np.ndarray, b: np.ndarray, inv_ls: np.ndarray) -> np.ndarray:
    sa, sb = a * inv_ls, b * inv_ls
    d2 = (sa * sa).sum(1)[:, None] + (sb * sb).sum(1)[None, :] - 2.0 * sa @ sb.T
    return np.maximum(d2, 0.0)


def _matern(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matern 5/2 correlation at distance ``r`` and ``m(r) = 5/3 (1 + sqrt5 r) exp(-sqrt5 r)``, the factor of
    its derivatives: ``dk/dr = -r m(r)``."""
    e = np.exp(-_SQRT5 * r)
    return (1.0 + _SQRT5 * r + 5.0 / 3.0 * r * r) * e, 5.0 / 3.0 * (1.0 + _SQRT5 * r) * e


def _negative_log_posterior(
    theta: np.ndarray, x: np.ndarray, y: np.ndarray, groups: np.ndarray, ls_mean: float
) -> tuple[float, np.ndarray]:
    n_groups = len(theta) - 2
    ls = np.exp(theta[:n_groups])
    signal, noise = math.exp(theta[-2]), math.exp(theta[-1])
    inv_ls = 1.0 / ls[groups]
    r = np.sqrt(_scaled_sqdist(x, x, inv_ls))
    corr, m = _matern(r)
    k = signal * corr
    k[np.diag_indices_from(k)] += noise + 1e-9
    try:
        chol = cholesky(k, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    alpha = cho_solve((chol, True), y, check_finite=False)
    nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum() + 0.5 * len(y) * math.log(2 * math.pi)
    k_inv = cho_solve((chol, True), np.eye(len(y)), check_finite=False)
    w = np.outer(alpha, alpha) - k_inv  # d(log likelihood) = 0.5 * sum(w * dK)
    grad = np.zeros_like(theta)
    wm = w * (signal * m)
    for f in range(x.shape[1]):
        diff = (x[:, f][:, None] - x[:, f][None, :]) * inv_ls[f]
        grad[groups[f]] -= 0.5 * np.sum(wm * diff * diff)
    grad[-2] = -0.5 * np.sum(w * (signal * corr))
    grad[-1] = -0.5 * noise * np.trace(w)
    # Log-normal priors: penalise implausible length scales, signal and noise.
    prior_terms = (
        (theta[:n_groups], ls_mean, _LS_PRIOR_SD),
        (theta[-2:-1], _SIGNAL_PRIOR[0], _SIGNAL_PRIOR[1]),
        (theta[-1:], _NOISE_PRIOR[0], _NOISE_PRIOR[1]),
    )
    offset = 0
    for values, mean, sd in prior_terms:
        nll += 0.5 * float(np.sum(((values - mean) / sd) ** 2))
        grad[offset : offset + len(values)] += (values - mean) / sd**2
        offset += len(values)
    return float(nll), grad


def fit_hyperparameters(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, starts: list[GPHyperparameters] | None = None
) -> GPHyperparameters:
    """Maximise the log marginal likelihood (plus priors) from each start; the best fit wins."""
    n_groups = int(groups.max()) + 1 if len(groups) else 0
    ls_mean = _ls_prior_mean(n_groups)
    if not starts:
        starts = [GPHyperparameters(np.full(n_groups, ls_mean), 0.0, math.log(1e-3))]
    bounds = [_LOG_LS_BOUNDS] * n_groups + [_LOG_SIGNAL_BOUNDS, _LOG_NOISE_BOUNDS]
    best: tuple[float, np.ndarray] | None = None
    for start in starts:
        result = minimize(
            _negative_log_posterior,
            np.clip(start.to_vector(), [b[0] for b in bounds], [b[1] for b in bounds]),
            args=(x, y, groups, ls_mean),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 200},
        )
        if best is None or result.fun < best[0]:
            best = (float(result.fun), result.x)
    assert best is not None
    return GPHyperparameters.from_vector(best[1])


class GPPosterior:
    """The posterior of the latent function given data ``(x, y)`` and hyperparameters."""

    def __init__(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray, params: GPHyperparameters) -> None:
        self.x = x
        self.inv_ls = np.exp(-params.log_lengthscales)[groups]
        self.signal = math.exp(params.log_signal)
        noise = math.exp(params.log_noise)
        r = np.sqrt(_scaled_sqdist(x, x, self.inv_ls))
        k = self.signal * _matern(r)[0]
        jitter = 1e-9
        while True:
            try:
                k_noisy = k.copy()
                k_noisy[np.diag_indices_from(k_noisy)] += noise + jitter
                self.chol = cholesky(k_noisy, lower=True, check_finite=False)
                break
            except np.linalg.LinAlgError:
                jitter *= 10.0
                if jitter > 1.0:
                    raise
        self.alpha = cho_solve((self.chol, True), y, check_finite=False)

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the latent function at rows of ``z``."""
        corr = _matern(np.sqrt(_scaled_sqdist(z, self.x, self.inv_ls)))[0]
        k = self.signal * corr
        v = solve_triangular(self.chol, k.T, lower=True, check_finite=False)
        return k @ self.alpha, np.maximum(self.signal - (v * v).sum(0), 1e-12)

    def predict_with_gradient(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, variance and their gradients with respect to ``z`` (each gradient (m, features))."""
        r = np.sqrt(_scaled_sqdist(z, self.x, self.inv_ls))
        corr, m = _matern(r)
        k = self.signal * corr
        w = cho_solve((self.chol, True), k.T, check_finite=False)  # K^-1 k, (n, m)
        mean = k @ self.alpha
        var = np.maximum(self.signal - (k * w.T).sum(1), 1e-12)
        g = -self.signal * m  # dk_i/dz = g_i * (z - x_i) * inv_ls^2
        inv2 = self.inv_ls**2
        ga = g * self.alpha[None, :]
        dmean = (ga.sum(1)[:, None] * z - ga @ self.x) * inv2
        gw = g * w.T
        dvar = -2.0 * (gw.sum(1)[:, None] * z - gw @ self.x) * inv2
        return mean, var, dmean, dvar
