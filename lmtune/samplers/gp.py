"""Gaussian-process Bayesian optimisation on numpy/scipy.

The GP (Matern 5/2, one length scale per parameter) models the losses on the unit-cube encoding; categorical
parameters enter one-hot, inactive conditional ones at a fixed value. Losses are standardised and passed through a
Yeo-Johnson power transform fitted by maximum likelihood, which amounts to a log transform for the heavy-tailed
losses typical of optimisation. The next point maximises log expected improvement (plus ``beta / n * log prior``
when the space has priors): thousands of random and near-best candidates are screened, and the best few are
polished together by L-BFGS-B with analytic gradients.

Cost control for long studies: hyperparameters are refitted on every new trial up to ``refit_every_after`` trials
and on every ``refit_interval``-th one after that, on at most ``max_fit_points`` trials (the best half and the
most recent half); the posterior uses at most ``max_points`` trials. Every choice depends only on the history, so
suggestions stay reproducible in any process.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from lmtune.history import TrialHistory
from lmtune.samplers._acquisition import log_ei, maximise
from lmtune.samplers._gaussian_process import GPHyperparameters, GPPosterior, fit_hyperparameters
from lmtune.samplers._observations import DimensionKinds, ObservationCache, Observations
from lmtune.samplers._options import check_int, check_non_negative
from lmtune.samplers._prior import UnitPrior, prior_weight, unit_prior
from lmtune.samplers._startup import startup_point
from lmtune.samplers._threads import single_threaded_blas
from lmtune.samplers.tpe import IndependentTPE
from lmtune.space import SearchSpace

__all__ = ["GPSampler"]


class _Features:
    """Maps unit-cube points (NaN where inactive) to GP features: numerics as they are (0.5 when inactive),
    categoricals one-hot (all zero when inactive). ``groups`` names the parameter of each feature column."""

    def __init__(self, kinds: DimensionKinds) -> None:
        self.kinds = kinds
        columns: list[list[int]] = []
        groups: list[int] = []
        for j, is_cat in enumerate(kinds.categorical):
            width = int(kinds.bins[j]) if is_cat else 1
            columns.append(list(range(len(groups), len(groups) + width)))
            groups.extend([j] * width)
        self.columns = columns
        self.groups = np.array(groups, dtype=int)
        self.numeric_dims = np.flatnonzero(~kinds.categorical)
        self.numeric_columns = np.array([columns[j][0] for j in self.numeric_dims], dtype=int)

    def encode(self, points: np.ndarray) -> np.ndarray:
        out = np.zeros((len(points), len(self.groups)))
        for j, cols in enumerate(self.columns):
            u = points[:, j]
            if self.kinds.categorical[j]:
                active = ~np.isnan(u)
                index = np.minimum(np.floor(u[active] * len(cols)), len(cols) - 1).astype(int)
                out[np.flatnonzero(active), np.array(cols)[index]] = 1.0
            else:
                out[:, cols[0]] = np.where(np.isnan(u), 0.5, u)
        return out

    def decode(self, features: np.ndarray) -> np.ndarray:
        """The unit-cube point of one feature row (categoricals at their bin centres)."""
        point = np.empty(len(self.columns))
        for j, cols in enumerate(self.columns):
            if self.kinds.categorical[j]:
                point[j] = (int(np.argmax(features[cols])) + 0.5) / len(cols)
            else:
                point[j] = features[cols[0]]
        return point


def _yeo_johnson(y: np.ndarray, lam: float) -> np.ndarray:
    out = np.empty_like(y)
    pos = y >= 0
    out[pos] = np.log1p(y[pos]) if abs(lam) < 1e-8 else ((y[pos] + 1.0) ** lam - 1.0) / lam
    neg = ~pos
    if abs(lam - 2.0) < 1e-8:
        out[neg] = -np.log1p(-y[neg])
    else:
        out[neg] = -((1.0 - y[neg]) ** (2.0 - lam) - 1.0) / (2.0 - lam)
    return out


def _yeo_johnson_lambda(y: np.ndarray) -> float:
    """The Yeo-Johnson exponent in [-2, 2] maximising the normal log likelihood of the transformed values."""
    log_term = float(np.sum(np.sign(y) * np.log1p(np.abs(y))))

    def negative_llf(lam: float) -> float:
        var = float(np.var(_yeo_johnson(y, lam)))
        return 0.5 * len(y) * math.log(max(var, 1e-300)) - (lam - 1.0) * log_term

    return float(minimize_scalar(negative_llf, bounds=(-2.0, 2.0), method="bounded").x)


def _transform(loss: np.ndarray) -> np.ndarray:
    """Standardise, Yeo-Johnson (exponent by maximum likelihood), standardise again: monotone, so the best stays
    the best."""
    y = (loss - loss.mean()) / (loss.std() or 1.0)
    if len(y) >= 5 and np.ptp(y) > 0:
        y = _yeo_johnson(y, _yeo_johnson_lambda(y))
        y = (y - y.mean()) / (y.std() or 1.0)
    return y


def _best_and_recent(loss: np.ndarray, limit: int) -> np.ndarray:
    """Indices (ascending) of at most ``limit`` trials: the best half and the most recent half."""
    n = len(loss)
    if n <= limit:
        return np.arange(n)
    half = limit // 2
    chosen = set(np.argsort(loss, kind="stable")[:half].tolist())
    for index in range(n - 1, -1, -1):
        if len(chosen) >= limit:
            break
        chosen.add(index)
    return np.array(sorted(chosen), dtype=int)


class GPSampler(IndependentTPE):
    """Bayesian optimisation with a Gaussian process and log expected improvement.

    Options: ``n_startup_trials`` (default ``max(5, d + 2)``), ``n_candidates`` screened per suggestion (2048),
    ``n_restarts`` polished by L-BFGS-B (5), ``prior_beta`` (strength of user priors), ``max_points`` and
    ``max_fit_points`` (history bounds for the posterior and the hyperparameter fit), ``refit_every_after`` and
    ``refit_interval`` (refit schedule).
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        n_startup_trials: int | None = None,
        n_candidates: int = 2048,
        n_restarts: int = 5,
        prior_beta: float = 10.0,
        max_points: int = 1000,
        max_fit_points: int = 200,
        refit_every_after: int = 100,
        refit_interval: int = 10,
    ) -> None:
        super().__init__(seed)
        self.n_startup_trials = (
            None if n_startup_trials is None else check_int("n_startup_trials", n_startup_trials, 1)
        )
        self.n_candidates = check_int("n_candidates", n_candidates, 16)
        self.n_restarts = check_int("n_restarts", n_restarts, 1)
        self.max_points = check_int("max_points", max_points, 10)
        self.max_fit_points = check_int("max_fit_points", max_fit_points, 10)
        self.refit_every_after = check_int("refit_every_after", refit_every_after, 1)
        self.refit_interval = check_int("refit_interval", refit_interval, 1)
        self.prior_beta = check_non_negative("prior_beta", prior_beta)
        self._cache = ObservationCache()
        self._fits: dict[str, GPHyperparameters] = {}
        self._fits_lock = threading.Lock()

    def startup_trials(self, space: SearchSpace) -> int:
        return self.n_startup_trials if self.n_startup_trials is not None else max(5, len(space) + 2)

    def suggest(self, space: SearchSpace, history: TrialHistory, trial_number: int) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        obs = self._cache.collect(space, history, exclude=trial_number)
        prior = unit_prior(space, obs.kinds)
        if obs.n < self.startup_trials(space) or np.ptp(obs.loss) == 0:
            rng = self.rng(trial_number, "startup")
            return space.from_unit(startup_point(self.seed, len(space), trial_number, prior, rng))
        with single_threaded_blas():
            point = self._model_point(space, obs, prior, self.rng(trial_number))
        return space.from_unit(point)

    def _hyperparameters(self, features: _Features, obs: Observations) -> GPHyperparameters:
        """Hyperparameters fitted on a prefix of the history fixed by the refit schedule (cached)."""
        n = obs.n
        n_fit = n if n <= self.refit_every_after else n - (n - self.refit_every_after) % self.refit_interval
        loss = obs.loss[:n_fit]
        chosen = _best_and_recent(loss, self.max_fit_points)
        x = features.encode(obs.x[:n_fit][chosen])
        y = _transform(loss)[chosen]
        key = hashlib.blake2b(
            x.tobytes() + y.tobytes() + features.groups.tobytes(), digest_size=16
        ).hexdigest()
        with self._fits_lock:
            cached = self._fits.get(key)
        if cached is not None:
            return cached
        n_params = len(features.columns)
        base = math.log(0.3 * math.sqrt(n_params))
        starts = [GPHyperparameters(np.full(n_params, base), 0.0, math.log(1e-3))]
        if n_fit <= self.refit_every_after:
            starts.append(GPHyperparameters(np.full(n_params, base - 1.0), 0.0, math.log(1e-4)))
        fitted = fit_hyperparameters(x, y, features.groups, starts)
        with self._fits_lock:
            if len(self._fits) >= 16:
                self._fits.pop(next(iter(self._fits)))
            self._fits[key] = fitted
        return fitted

    def _candidates(
        self, space: SearchSpace, obs: Observations, prior: UnitPrior | None, rng: np.random.Generator
    ) -> np.ndarray:
        """Random points (some drawn from the prior) and perturbations of the best trials, in unit coordinates."""
        d = len(space)
        n_local = self.n_candidates // 2
        uniform = rng.random((self.n_candidates - n_local, d))
        if prior is not None:
            prior.sample_into(uniform[: len(uniform) // 2], rng)
        best = obs.x[np.argsort(obs.loss, kind="stable")[: min(5, obs.n)]]
        local = best[rng.integers(len(best), size=n_local)]
        noise = np.where(rng.random((n_local, 1)) < 0.5, 0.02, 0.1) * rng.standard_normal(local.shape)
        noise[:, obs.kinds.categorical] = 0.0
        local = local + noise
        flip = rng.random(local.shape) < 0.5
        for j in np.flatnonzero(obs.kinds.categorical):
            local[:, j] = np.where(flip[:, j], rng.random(n_local), local[:, j])
        local = np.where(np.isnan(local), rng.random(local.shape), np.clip(local, 0.0, 1.0))
        points = np.concatenate([uniform, local])
        if space.is_conditional:
            points = np.array([space.to_unit(space.from_unit(p)) for p in points])
        return points

    def _model_point(
        self, space: SearchSpace, obs: Observations, prior: UnitPrior | None, rng: np.random.Generator
    ) -> np.ndarray:
        features = _Features(obs.kinds)
        params = self._hyperparameters(features, obs)
        y = _transform(obs.loss)
        keep = _best_and_recent(obs.loss, self.max_points)
        x_data, y_data = obs.x[keep], y[keep]
        if len(obs.pending):
            # Constant liar: a running trial is assumed to return the mean, so nearby EI collapses.
            x_data = np.concatenate([x_data, obs.pending])
            y_data = np.concatenate([y_data, np.full(len(obs.pending), float(y.mean()))])
        posterior = GPPosterior(features.encode(x_data), y_data, features.groups, params)
        best = float(y.min())
        beta = prior_weight(self.prior_beta, obs.n) if prior is not None and self.prior_beta > 0 else 0.0

        points = self._candidates(space, obs, prior, rng)
        z = features.encode(points)
        mean, var = posterior.predict(z)
        score = log_ei(mean, var, best)[0]
        if beta and prior is not None:
            score = score + beta * prior.log_density(points)
        order = np.argsort(-score, kind="stable")[: self.n_restarts]
        starts, start_points = z[order], points[order]

        numeric = features.numeric_columns
        lower, upper = starts.copy(), starts.copy()
        active = ~np.isnan(start_points[:, features.numeric_dims])
        lower[:, numeric] = np.where(active, 0.0, starts[:, numeric])
        upper[:, numeric] = np.where(active, 1.0, starts[:, numeric])

        def objective(zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            m, v, dm, dv = posterior.predict_with_gradient(zs)
            value, d_mean, d_var = log_ei(m, v, best)
            grad = d_mean[:, None] * dm + d_var[:, None] * dv
            if beta and prior is not None:
                units = np.full((len(zs), len(space)), np.nan)
                units[:, features.numeric_dims] = np.where(active, zs[:, numeric], np.nan)
                value = value + beta * prior.log_density(units)
                prior_grad = np.nan_to_num(prior.grad_log_density(units))
                grad[:, numeric] += beta * prior_grad[:, features.numeric_dims]
            return value, grad

        polished, polished_score = maximise(objective, starts, lower, upper)
        ranked = sorted(
            [(float(s), i, polished[i]) for i, s in enumerate(polished_score)]
            + [(float(score[i]), len(polished) + k, z[i]) for k, i in enumerate(np.argsort(-score)[:64])],
            key=lambda item: (-item[0], item[1]),
        )
        taken = np.concatenate([obs.x, obs.pending])
        for _, _, row in ranked:
            point = space.to_unit(space.from_unit(features.decode(row)))
            same = (taken == point) | (np.isnan(taken) & np.isnan(point))
            if not same.all(axis=1).any():
                return point
        return space.to_unit(space.from_unit(rng.random(len(space))))
