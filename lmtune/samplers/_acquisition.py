"""Log expected improvement (for minimisation) and its optimisation over a box.

``log EI`` is computed stably far into the tails (Ament et al., 2023, "Unexpected improvements to expected
improvement"), so the optimiser gets a useful gradient even where plain EI underflows to zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize
from scipy.special import erfcx, log_ndtr

__all__ = ["log_ei", "maximise"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)


def _log_h(z: np.ndarray) -> np.ndarray:
    """``log(z Phi(z) + phi(z))``, accurate for very negative ``z``."""
    out = np.empty_like(z)
    upper = z > -1.0
    zu = z[upper]
    out[upper] = np.log(zu * np.exp(log_ndtr(zu)) + np.exp(-0.5 * zu * zu - _LOG_SQRT_2PI))
    t = -z[~upper]
    # h(-t) = phi(t) (1 - t R(t)) with the Mills ratio R(t) = sqrt(pi/2) erfcx(t / sqrt 2); 1 - tR ~ 1/t^2.
    tail = 1.0 - t * _SQRT_HALF_PI * erfcx(t / math.sqrt(2.0))
    tail = np.where(t > 1e4, 1.0 / (t * t), np.maximum(tail, 1e-300))
    out[~upper] = -0.5 * t * t - _LOG_SQRT_2PI + np.log(tail)
    return out


def log_ei(mean: np.ndarray, var: np.ndarray, best: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log EI below ``best`` and its derivatives with respect to the mean and the variance."""
    sd = np.sqrt(var)
    z = (best - mean) / sd
    log_h = _log_h(z)
    value = np.log(sd) + log_h
    ratio_cdf = np.exp(log_ndtr(z) - log_h)  # Phi(z) / h(z)
    ratio_pdf = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_h)  # phi(z) / h(z)
    d_mean = -ratio_cdf / sd
    d_var = ratio_pdf / sd / (2.0 * sd)
    return value, d_mean, d_var


def maximise(
    objective: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    starts: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    maxiter: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise a batched objective from each row of ``starts`` at once with L-BFGS-B.

    ``objective(points) -> (values (m,), gradients (m, f))``; ``lower``/``upper`` are per start and feature, so
    a feature may be pinned (lower == upper). The sum of independent problems is separable, so one L-BFGS-B run
    optimises all starts together (as BoTorch does). Returns the final points and their values.
    """
    shape = starts.shape

    def negative(flat: np.ndarray) -> tuple[float, np.ndarray]:
        values, grads = objective(flat.reshape(shape))
        return -float(values.sum()), -grads.ravel()

    result = minimize(
        negative,
        np.clip(starts, lower, upper).ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lower.ravel(), upper.ravel(), strict=True)),
        options={"maxiter": maxiter},
    )
    points = result.x.reshape(shape)
    return points, objective(points)[0]
