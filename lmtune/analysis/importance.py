"""Which hyperparameters matter: functional ANOVA over a random-forest surrogate, and a quick estimate.

fANOVA (Hutter, Hoos and Leyton-Brown, 2014) fits a random forest to (configuration -> value) and splits the
variance of each tree's prediction over the whole search space into the part explained by each parameter alone
(its main effect) and the rest (interactions). A tree is piecewise constant on axis-aligned boxes, so the
marginal of one parameter is exact: for each interval between the tree's split points on that parameter, the
mean of the leaf values weighted by the volume of the other dimensions each leaf covers. The importance of a
parameter is its main-effect variance over the tree's total variance, averaged over the trees of a forest; the
spread is the standard deviation over forests grown with different seeds.

Volumes are measured on the unit-cube encoding of the space (log scales are uniform in the log), discrete
parameters (categorical, integer, stepped) put equal mass on each value, and a conditional parameter that is
inactive in some trials gets an extra "inactive" value whose mass is the fraction of trials where it was
inactive.

The marginal alternative needs no model: the share of the value's variance explained by binning one parameter
(the correlation ratio eta squared), with a bootstrap spread. It is quick but sees only where trials were
sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lmtune.analysis.records import analysis_space, as_history
from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.history import TrialHistory
from lmtune.space import Distribution

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["METHODS", "Importance", "fanova_importance", "importance", "marginal_importance"]

INACTIVE = -1.0  # the encoded position of "parameter not active in this trial"
MAX_DISCRETE_VALUES = 64  # finite distributions with at most this many values get point masses
DEFAULT_MAX_TRIALS = 2000  # larger studies are subsampled (deterministically) to keep the forest quick
METHODS = ("fanova", "marginal")


@dataclass(frozen=True)
class Importance:
    """Importance of each parameter: the share of the value's variance it explains alone (0..1).

    ``mean`` is ordered from the most to the least important; ``std`` is the spread over forest seeds (fANOVA)
    or bootstrap resamples (marginal).
    """

    method: str
    mean: dict[str, float]
    std: dict[str, float]
    n_trials: int

    def ranked(self) -> list[str]:
        """Parameter names, most important first."""
        return list(self.mean)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "n_trials": self.n_trials,
            "params": [{"name": n, "importance": self.mean[n], "std": self.std[n]} for n in self.mean],
        }


@dataclass(frozen=True)
class _Measure:
    """The probability measure of one encoded dimension: point masses plus a uniform part on [0, 1]."""

    points: np.ndarray
    point_weights: np.ndarray
    uniform_weight: float

    def mass(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Measure of each half-open interval ``(lo, hi]`` (the side a tree sends ``x <= threshold`` to)."""
        out = self.uniform_weight * np.clip(np.minimum(hi, 1.0) - np.maximum(lo, 0.0), 0.0, None)
        if self.points.size:
            inside = (self.points[None, :] > lo[:, None]) & (self.points[None, :] <= hi[:, None])
            out = out + inside.astype(float) @ self.point_weights
        return out


def _measure(dist: Distribution, inactive_share: float) -> _Measure:
    active = 1.0 - inactive_share
    points: list[float] = []
    weights: list[float] = []
    uniform = active
    if dist.n_values <= MAX_DISCRETE_VALUES:
        values = sorted({dist.to_unit(v) for v in dist.grid_values()})
        points = list(values)
        weights = [active / len(values)] * len(values)
        uniform = 0.0
    if inactive_share > 0:
        points.append(INACTIVE)
        weights.append(inactive_share)
    return _Measure(np.asarray(points, dtype=float), np.asarray(weights, dtype=float), uniform)


@dataclass(frozen=True)
class _Data:
    names: list[str]
    x: np.ndarray  # (n_trials, n_params) unit-cube encoding, INACTIVE where a parameter is absent
    y: np.ndarray  # (n_trials,) values
    measures: list[_Measure]


def _encode(source: Study | TrialHistory, params: Sequence[str] | None, max_trials: int) -> _Data:
    history = as_history(source)
    space = analysis_space(history)
    names = list(params) if params is not None else list(space)
    unknown = [n for n in names if n not in space]
    if unknown:
        raise ConfigError(f"params: unknown parameter(s) {unknown}; the study has {list(space)}")
    if not names:
        raise ConfigError("importance needs at least one parameter, but the study has none")
    records = [r for r in history.complete() if any(n in r.params for n in names)]
    if len(records) < 2:
        raise ConfigError(f"importance needs at least 2 COMPLETE trials, but the study has {len(records)}")
    if len(records) > max_trials:  # a fixed-seed subsample: same study, same answer
        keep = np.sort(np.random.default_rng(0).choice(len(records), size=max_trials, replace=False))
        records = [records[i] for i in keep]
    x = np.array([[_encode_value(space[n], r.params.get(n)) for n in names] for r in records], dtype=float)
    y = np.array([float(r.value) for r in records])  # type: ignore[arg-type]
    measures = [_measure(space[n], float(np.mean(x[:, j] == INACTIVE))) for j, n in enumerate(names)]
    return _Data(names, x, y, measures)


def _encode_value(dist: Distribution, value: Any) -> float:
    if value is None or not dist.contains(value):
        return INACTIVE
    return float(dist.to_unit(value))


def _leaf_boxes(tree: Any, n_dims: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boxes ``(lo, hi]`` and values of a fitted sklearn tree's leaves (nodes are stored parents
    first)."""
    t = tree.tree_
    lo = np.full((t.node_count, n_dims), -np.inf)
    hi = np.full((t.node_count, n_dims), np.inf)
    for node in range(t.node_count):
        left, right = t.children_left[node], t.children_right[node]
        if left < 0:
            continue
        feature, threshold = t.feature[node], t.threshold[node]
        lo[left], hi[left] = lo[node], hi[node]
        lo[right], hi[right] = lo[node], hi[node]
        hi[left, feature] = threshold
        lo[right, feature] = threshold
    leaves = t.children_left < 0
    return lo[leaves], hi[leaves], t.value[leaves, 0, 0]


def _tree_main_effects(tree: Any, measures: list[_Measure]) -> np.ndarray | None:
    """Each dimension's main-effect variance over the tree's total variance; None for a constant tree."""
    d = len(measures)
    lo, hi, values = _leaf_boxes(tree, d)
    mass = np.stack([measures[j].mass(lo[:, j], hi[:, j]) for j in range(d)], axis=1)
    weight = mass.prod(axis=1)
    total = weight.sum()
    if total <= 0:
        return None
    mean = float((weight * values).sum() / total)
    variance = float((weight * (values - mean) ** 2).sum() / total)
    if variance <= 1e-12 * max(1.0, mean**2):
        return None
    shares = np.zeros(d)
    for i in range(d):
        others = np.prod(np.delete(mass, i, axis=1), axis=1) if d > 1 else np.ones(len(values))
        edges = np.unique(np.concatenate([lo[:, i], hi[:, i]]))
        cell_mass = measures[i].mass(edges[:-1], edges[1:])
        start = np.searchsorted(edges, lo[:, i])
        stop = np.searchsorted(edges, hi[:, i])
        diff = np.zeros(len(edges))
        contribution = values * others
        np.add.at(diff, start, contribution)
        np.add.at(diff, stop, -contribution)
        marginal = np.cumsum(diff)[:-1] / total
        shares[i] = float((cell_mass * (marginal - mean) ** 2).sum() / total) / variance
    return shares


def _summary(method: str, names: list[str], samples: np.ndarray, n_trials: int) -> Importance:
    mean, std = samples.mean(axis=0), samples.std(axis=0)
    order = sorted(range(len(names)), key=lambda j: (-mean[j], names[j]))
    return Importance(
        method, {names[j]: float(mean[j]) for j in order}, {names[j]: float(std[j]) for j in order}, n_trials
    )


def fanova_importance(
    source: Study | TrialHistory,
    *,
    params: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_trees: int = 32,
    max_depth: int | None = 32,
    max_trials: int = DEFAULT_MAX_TRIALS,
) -> Importance:
    """fANOVA main-effect importance over the COMPLETE trials, mean and spread over one forest per seed."""
    try:
        from sklearn.ensemble import RandomForestRegressor
    except ImportError as exc:
        raise MissingDependencyError(
            "fANOVA importance needs scikit-learn: pip install 'lmtune[viz]'"
        ) from exc
    data = _encode(source, params, max_trials)
    if not seeds:
        raise ConfigError("seeds must list at least one forest seed, but got an empty list")
    per_forest = []
    for seed in seeds:
        forest = RandomForestRegressor(
            n_estimators=n_trees,
            max_depth=max_depth,
            min_samples_leaf=2,
            max_features=1.0,
            bootstrap=True,
            random_state=seed,
        )
        forest.fit(data.x, data.y)
        effects = (_tree_main_effects(tree, data.measures) for tree in forest.estimators_)
        shares = [s for s in effects if s is not None]
        per_forest.append(np.mean(shares, axis=0) if shares else np.zeros(len(data.names)))
    return _summary("fanova", data.names, np.array(per_forest), len(data.y))


def _eta_squared(column: np.ndarray, y: np.ndarray, discrete: bool, n_bins: int) -> float:
    """Share of the variance of ``y`` explained by the groups of ``column`` (inactive is its own group)."""
    groups = column.copy()
    active = column != INACTIVE
    if not discrete and active.sum() > n_bins:
        cuts = np.quantile(column[active], np.linspace(0, 1, n_bins + 1)[1:-1])
        groups[active] = np.searchsorted(cuts, column[active])
    total = ((y - y.mean()) ** 2).sum()
    if total <= 0:
        return 0.0
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    return float((counts * (means - y.mean()) ** 2).sum() / total)


def marginal_importance(
    source: Study | TrialHistory,
    *,
    params: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    max_trials: int = DEFAULT_MAX_TRIALS,
) -> Importance:
    """Model-free importance: each parameter's correlation ratio, mean and spread over bootstrap seeds."""
    data = _encode(source, params, max_trials)
    n = len(data.y)
    n_bins = int(np.clip(n // 10, 2, 10))
    discrete = [m.uniform_weight == 0 for m in data.measures]
    samples = []
    for seed in seeds:
        idx = np.random.default_rng(seed).integers(0, n, size=n)
        samples.append(
            [_eta_squared(data.x[idx, j], data.y[idx], discrete[j], n_bins) for j in range(len(data.names))]
        )
    return _summary("marginal", data.names, np.array(samples), n)


def importance(source: Study | TrialHistory, method: str = "fanova", **options: Any) -> Importance:
    """Parameter importance by ``method`` ("fanova" or "marginal"); options go to that method."""
    if method == "fanova":
        return fanova_importance(source, **options)
    if method == "marginal":
        return marginal_importance(source, **options)
    raise ConfigError(f"importance method must be one of {list(METHODS)}, but got {method!r}")
