"""Search spaces: distributions, conditional parameters, the unit-cube encoding and grids.

A :class:`SearchSpace` maps parameter names to distributions. A parameter may be *conditional*: active only when
its parents take given values (``momentum`` only when ``optimizer == "sgd"``). Model-based samplers see a space
through :meth:`SearchSpace.to_unit` / :meth:`SearchSpace.from_unit`, which map a configuration to a point of
``[0, 1]^d`` (NaN for inactive parameters) and back; grid search through :meth:`SearchSpace.grid`.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError

__all__ = [
    "CategoricalDistribution",
    "Distribution",
    "FloatDistribution",
    "IntDistribution",
    "Prior",
    "SearchSpace",
    "distribution_from_dict",
]

MAX_GRID_SIZE = 1_000_000


@dataclass(frozen=True)
class Prior:
    """A user's belief about a parameter: a typical ``value`` and a ``confidence`` in (0, 1]."""

    value: Any
    confidence: float

    def __post_init__(self) -> None:
        if not isinstance(self.confidence, (int, float)) or not 0 < self.confidence <= 1:
            raise ConfigError(f"prior confidence must be in (0, 1], but got {self.confidence!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": self.confidence}


class Distribution(ABC):
    """The set of values one parameter may take, and how it maps to the unit interval."""

    prior: Prior | None

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a legal value of this distribution."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """Map a legal value to [0, 1]."""

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """Map a point of [0, 1] to a legal value (the inverse of :meth:`to_unit` up to rounding)."""

    @abstractmethod
    def grid_values(self) -> list[Any]:
        """The values a grid search visits, in order."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, accepted by :func:`distribution_from_dict`."""

    @property
    @abstractmethod
    def n_values(self) -> float:
        """How many distinct values there are (``inf`` for a continuous float)."""

    def cast(self, value: Any) -> Any:
        """Return ``value`` in this distribution's canonical type, or raise ``ConfigError``."""
        if not self.contains(value):
            raise ConfigError(f"value {value!r} is not in {self.describe()}")
        return value

    def describe(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, but got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, but got {value!r}")
    return value


def _check_bounds(low: float, high: float, log: bool) -> None:
    _check_number("low", low)
    _check_number("high", high)
    if low > high:
        raise ConfigError(f"`low <= high` must hold, but got low={low!r}, high={high!r}")
    if not math.isfinite(high - low):
        raise ConfigError(
            f"`high - low` must be a finite number, but got low={low!r}, high={high!r}; use bounds nearer zero"
        )
    if log and low <= 0:
        raise ConfigError(f"a log scale needs `low > 0`, but got low={low!r}")


def _check_step(step: float, low: float, high: float) -> None:
    _check_number("step", step)
    if step <= 0 or (high > low and step > high - low):
        raise ConfigError(
            f"step must be in (0, high - low] = (0, {high - low!r}], but got step={step!r} "
            f"(low={low!r}, high={high!r})"
        )


def _check_prior(prior: Prior | None, dist: Distribution) -> None:
    if prior is not None and not dist.contains(prior.value):
        raise ConfigError(f"prior value {prior.value!r} is not in {dist.describe()}")


def _bin_index(u: float, n: int) -> int:
    return min(max(int(math.floor(u * n)), 0), n - 1)


class FloatDistribution(Distribution):
    """A real number in ``[low, high]``, optionally on a log scale or on a grid of ``step``.

    ``grid_points`` says how many evenly spaced values (on the log scale if ``log``) a grid search visits when
    there is no ``step``.
    """

    def __init__(
        self,
        low: float,
        high: float,
        *,
        log: bool = False,
        step: float | None = None,
        grid_points: int | None = None,
        prior: Prior | None = None,
    ) -> None:
        _check_bounds(low, high, log)
        if step is not None:
            if log:
                raise ConfigError(f"a float cannot have both `log: true` and a step, but got step={step!r}")
            _check_step(step, low, high)
            high = low + math.floor((high - low) / step + 1e-9) * step
        if grid_points is not None and (
            isinstance(grid_points, bool) or not isinstance(grid_points, int) or grid_points < 1
        ):
            raise ConfigError(f"grid_points must be a positive integer, but got {grid_points!r}")
        self.low, self.high, self.log, self.step = float(low), float(high), bool(log), step
        self.grid_points = grid_points
        self.prior = prior
        _check_prior(prior, self)

    @property
    def n_values(self) -> float:
        if self.step is not None:
            return round((self.high - self.low) / self.step) + 1
        return 1 if self.low == self.high else math.inf

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if (
            not self.low - 1e-12 * max(1.0, abs(self.low))
            <= value
            <= self.high + 1e-12 * max(1.0, abs(self.high))
        ):
            return False
        if self.step is not None:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-6
        return True

    def cast(self, value: Any) -> float:
        super().cast(value)
        value = float(value)
        if self.step is not None:
            value = self._round_to_step(value)
        return min(max(value, self.low), self.high)

    def _round_to_step(self, value: float) -> float:
        assert self.step is not None
        k = round((value - self.low) / self.step)
        # Round away binary noise so 0.1 + 2 * 0.1 prints as 0.3.
        return float(round(self.low + k * self.step, 12))

    def to_unit(self, value: Any) -> float:
        if self.low == self.high:
            return 0.5
        if self.step is not None:
            n = int(self.n_values)
            return (round((value - self.low) / self.step) + 0.5) / n
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.low == self.high:
            return self.low
        if self.step is not None:
            return self._round_to_step(self.low + _bin_index(u, int(self.n_values)) * self.step)
        if self.log:
            value = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            value = self.low + u * (self.high - self.low)
        return min(max(value, self.low), self.high)

    def grid_values(self) -> list[float]:
        if self.step is not None:
            return [self._round_to_step(self.low + k * self.step) for k in range(int(self.n_values))]
        if self.low == self.high:
            return [self.low]
        if self.grid_points is None:
            raise ConfigError(
                f"a float without `step` cannot be gridded: give it `step` or `grid_points` ({self.describe()})"
            )
        if self.grid_points == 1:
            return [self.from_unit(0.5)]
        return [self.from_unit(k / (self.grid_points - 1)) for k in range(self.grid_points)]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "float", "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step is not None:
            d["step"] = self.step
        if self.grid_points is not None:
            d["grid_points"] = self.grid_points
        if self.prior is not None:
            d["prior"] = self.prior.to_dict()
        return d


class IntDistribution(Distribution):
    """An integer in ``[low, high]`` with a ``step``, optionally on a log scale (then ``step`` must be 1)."""

    def __init__(
        self, low: int, high: int, *, log: bool = False, step: int = 1, prior: Prior | None = None
    ) -> None:
        for field, value in (("low", low), ("high", high), ("step", step)):
            if isinstance(value, float) and float(value).is_integer():
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{field} of an int parameter must be an integer, but got {value!r}")
        low, high, step = int(low), int(high), int(step)
        _check_bounds(low, high, log)
        _check_step(step, low, high)
        if log and step != 1:
            raise ConfigError(f"an int with `log: true` needs step 1, but got step={step!r}")
        self.low, self.log, self.step = low, bool(log), step
        self.high = low + (high - low) // step * step
        self.prior = prior
        _check_prior(prior, self)

    @property
    def n_values(self) -> float:
        return (self.high - self.low) // self.step + 1

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not value.is_integer():
            return False
        return self.low <= value <= self.high and (int(value) - self.low) % self.step == 0

    def cast(self, value: Any) -> int:
        super().cast(value)
        return int(value)

    def to_unit(self, value: Any) -> float:
        if self.low == self.high:
            return 0.5
        if self.log:
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            return (math.log(value) - lo) / (hi - lo)
        return ((value - self.low) // self.step + 0.5) / self.n_values

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            lo, hi = math.log(self.low - 0.5), math.log(self.high + 0.5)
            return min(max(int(round(math.exp(lo + u * (hi - lo)))), self.low), self.high)
        return self.low + _bin_index(u, int(self.n_values)) * self.step

    def grid_values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "int", "low": self.low, "high": self.high}
        if self.log:
            d["log"] = True
        if self.step != 1:
            d["step"] = self.step
        if self.prior is not None:
            d["prior"] = self.prior.to_dict()
        return d


def _json_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False)


class CategoricalDistribution(Distribution):
    """One of a list of JSON values (strings, numbers, booleans, null, lists, objects)."""

    def __init__(self, choices: Sequence[Any], *, prior: Prior | None = None) -> None:
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence):
            raise ConfigError(f"choices must be a list, but got {choices!r}")
        if len(choices) == 0:
            raise ConfigError("choices must not be empty, but got []")
        keys = []
        for choice in choices:
            try:
                keys.append(_json_key(choice))
            except (TypeError, ValueError):
                raise ConfigError(
                    f"choices must be JSON values (no NaN or infinity), but got {choice!r}; remove it or quote it"
                ) from None
        if len(set(keys)) != len(keys):
            raise ConfigError(f"choices must be distinct, but got {list(choices)!r}")
        self.choices = tuple(choices)
        self._index = {key: i for i, key in enumerate(keys)}
        self.prior = prior
        _check_prior(prior, self)

    @property
    def n_values(self) -> float:
        return len(self.choices)

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices."""
        try:
            return self._index[_json_key(value)]
        except (TypeError, ValueError, KeyError):
            raise ConfigError(f"value {value!r} is not one of the choices {list(self.choices)!r}") from None

    def contains(self, value: Any) -> bool:
        try:
            return _json_key(value) in self._index
        except (TypeError, ValueError):
            return False

    def cast(self, value: Any) -> Any:
        return self.choices[self.index(value)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / len(self.choices)

    def from_unit(self, u: float) -> Any:
        return self.choices[_bin_index(u, len(self.choices))]

    def grid_values(self) -> list[Any]:
        return list(self.choices)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "categorical", "choices": list(self.choices)}
        if self.prior is not None:
            d["prior"] = self.prior.to_dict()
        return d


_NUMERIC_FIELDS = ("low", "high", "step")


def coerce_number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-5`` as a string: accept such strings as numbers."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return (
            int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
        )
    return value


def distribution_from_dict(spec: Mapping[str, Any] | Sequence[Any]) -> Distribution:
    """Build a distribution from its dict form (``{type: float, low: 0, high: 1}``); a bare list is categorical."""
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        return CategoricalDistribution(list(spec))
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"a parameter must be a mapping such as {{type: float, low: 0, high: 1}}, got {spec!r}"
        )
    spec = dict(spec)
    kind = spec.pop("type", None)
    prior_spec = spec.pop("prior", None)
    prior = None
    if prior_spec is not None:
        if not isinstance(prior_spec, Mapping) or set(prior_spec) != {"value", "confidence"}:
            raise ConfigError(f"prior must be {{value: ..., confidence: ...}}, but got {prior_spec!r}")
        value = prior_spec["value"] if kind == "categorical" else coerce_number(prior_spec["value"])
        prior = Prior(value, coerce_number(prior_spec["confidence"]))
    allowed = {
        "float": {"low", "high", "log", "step", "grid_points"},
        "int": {"low", "high", "log", "step"},
        "categorical": {"choices"},
    }
    if not isinstance(kind, str) or kind not in allowed:
        raise ConfigError(f"type must be one of float, int, categorical, but got {kind!r}")
    unknown = sorted(set(spec) - allowed[kind])
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} for a {kind} parameter; allowed: {sorted(allowed[kind])}"
        )
    for field in _NUMERIC_FIELDS:
        if field in spec:
            spec[field] = coerce_number(spec[field])
    missing = [f for f in ("low", "high") if f not in spec] if kind != "categorical" else []
    if kind == "categorical" and "choices" not in spec:
        missing = ["choices"]
    if missing:
        raise ConfigError(f"a {kind} parameter needs {', '.join(missing)}")
    if "log" in spec and not isinstance(spec["log"], bool):
        raise ConfigError(f"log must be true or false, but got {spec['log']!r}")
    if kind == "float":
        return FloatDistribution(prior=prior, **spec)
    if kind == "int":
        return IntDistribution(prior=prior, **spec)
    return CategoricalDistribution(spec["choices"], prior=prior)


class SearchSpace(Mapping[str, Distribution]):
    """Named distributions with optional conditions; iteration follows a parents-first order.

    ``conditions`` maps a parameter to ``{parent: [allowed values]}``: the parameter is active only when every
    parent is active and takes one of its allowed values.
    """

    def __init__(
        self,
        distributions: Mapping[str, Distribution],
        conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    ) -> None:
        for name, dist in distributions.items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"parameter names must be non-empty strings, but got {name!r}")
            if not isinstance(dist, Distribution):
                raise ConfigError(f"parameter {name!r} must be a Distribution, but got {dist!r}")
        self._conditions: dict[str, dict[str, tuple[Any, ...]]] = {}
        for child, parents in (conditions or {}).items():
            if child not in distributions:
                raise ConfigError(f"a condition is given for unknown parameter {child!r}")
            if not isinstance(parents, Mapping) or not parents:
                raise ConfigError(
                    f"{child}.when must map parent names to allowed values, but got {parents!r}"
                )
            checked: dict[str, tuple[Any, ...]] = {}
            for parent, allowed in parents.items():
                if parent not in distributions:
                    raise ConfigError(
                        f"{child}.when names unknown parent {parent!r}; known: {sorted(distributions)}"
                    )
                if parent == child:
                    raise ConfigError(f"{child}.when names the parameter itself")
                if isinstance(allowed, (str, bytes)) or not isinstance(allowed, Sequence):
                    allowed = [allowed]
                if len(allowed) == 0:
                    raise ConfigError(f"{child}.when.{parent} must list at least one value")
                for value in allowed:
                    if not distributions[parent].contains(value):
                        raise ConfigError(
                            f"{child}.when.{parent}: value {value!r} is not in {distributions[parent].describe()}"
                        )
                checked[parent] = tuple(allowed)
            self._conditions[child] = checked
        self._order = self._parents_first(list(distributions))
        self._distributions = {name: distributions[name] for name in self._order}

    def _parents_first(self, names: list[str]) -> list[str]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: tuple[str, ...]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise ConfigError(f"conditions form a cycle: {' -> '.join(path + (name,))}")
            state[name] = 1
            for parent in self._conditions.get(name, {}):
                visit(parent, path + (name,))
            state[name] = 2
            order.append(name)

        for name in names:
            visit(name, ())
        return order

    # Mapping protocol -------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Distribution:
        return self._distributions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_json()})"

    @property
    def conditions(self) -> dict[str, dict[str, tuple[Any, ...]]]:
        return {k: dict(v) for k, v in self._conditions.items()}

    @property
    def is_conditional(self) -> bool:
        return bool(self._conditions)

    # Activity -------------------------------------------------------------------------------------------
    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (parents') values in ``params``."""
        for parent, allowed in self._conditions.get(name, {}).items():
            if parent not in params or not self.is_active(parent, params):
                return False
            if not any(_json_key(params[parent]) == _json_key(v) for v in allowed):
                return False
        return True

    def validate(self, params: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """Check and cast a configuration; unknown or inactive names and missing active ones are errors.

        With ``partial=True`` missing parameters are allowed (for enqueued configurations the sampler completes).
        """
        unknown = sorted(set(params) - set(self._order))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown}; the space has {self._order}")
        out: dict[str, Any] = {}
        for name in self._order:
            if name in params:
                try:
                    value = self._distributions[name].cast(params[name])
                except ConfigError as exc:
                    raise ConfigError(f"parameter {name!r}: {exc}") from None
                out[name] = value
        for name in self._order:
            active = self.is_active(name, out) if not partial else self._maybe_active(name, out)
            if name in out and not active:
                raise ConfigError(f"parameter {name!r} is given but inactive under {self._conditions[name]}")
            if not partial and active and name not in out:
                raise ConfigError(f"parameter {name!r} is missing")
        return out

    def _maybe_active(self, name: str, params: Mapping[str, Any]) -> bool:
        for parent in self._conditions.get(name, {}):
            if parent not in params:
                return True
        return self.is_active(name, params)

    # Unit cube --------------------------------------------------------------------------------------------
    def to_unit(self, params: Mapping[str, Any]) -> np.ndarray:
        """Encode a configuration as a point of [0, 1]^d in :meth:`__iter__` order; NaN where inactive."""
        return np.array(
            [self._distributions[n].to_unit(params[n]) if n in params else np.nan for n in self._order],
            dtype=float,
        )

    def from_unit(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """Decode a point of [0, 1]^d to a configuration holding only the active parameters."""
        if len(u) != len(self._order):
            raise ValueError(f"expected a point of dimension {len(self._order)}, got {len(u)}")
        out: dict[str, Any] = {}
        for name, coord in zip(self._order, u, strict=True):
            if self.is_active(name, out):
                out[name] = self._distributions[name].from_unit(0.5 if np.isnan(coord) else coord)
        return out

    # Grid ---------------------------------------------------------------------------------------------------
    def grid(self) -> list[dict[str, Any]]:
        """Every configuration of the grid, conditional parameters only where active, in a fixed order."""
        values = {name: self._distributions[name].grid_values() for name in self._order}
        size = 1
        for vals in values.values():
            size *= len(vals)
            if size > MAX_GRID_SIZE:
                raise ConfigError(f"the grid has more than {MAX_GRID_SIZE} points; give coarser steps")
        configs: list[dict[str, Any]] = [{}]
        for name in self._order:
            grown: list[dict[str, Any]] = []
            for config in configs:
                if self.is_active(name, config):
                    grown.extend({**config, name: v} for v in values[name])
                else:
                    grown.append(config)
            configs = grown
        unique: dict[str, dict[str, Any]] = {}
        for config in configs:
            unique.setdefault(_json_key(config), config)
        return list(unique.values())

    def is_small_grid(self, limit: int) -> bool:
        """Whether the space is finite and has at most ``limit`` configurations."""
        total = 1.0
        for dist in self._distributions.values():
            total *= dist.n_values
        if total <= limit:
            return True
        if math.isinf(total) or not self._conditions:
            return False
        try:
            return len(self.grid()) <= limit if total <= MAX_GRID_SIZE else False
        except ConfigError:
            return False

    # Serialisation ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The study-file form: ``{name: {type: ..., ..., when: {parent: [values]}}}``."""
        out = {}
        for name in self._order:
            d = self._distributions[name].to_dict()
            if name in self._conditions:
                d["when"] = {p: list(v) for p, v in self._conditions[name].items()}
            out[name] = d
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> SearchSpace:
        """Build from the study-file form; errors name the parameter (``space.lr: ...``)."""
        if not isinstance(spec, Mapping):
            raise ConfigError(f"space must be a mapping of parameter names, but got {spec!r}")
        if not spec:
            raise ConfigError("space must define at least one parameter")
        distributions: dict[str, Distribution] = {}
        conditions: dict[str, Any] = {}
        for name, param in spec.items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"space: parameter names must be non-empty strings, but got {name!r}")
            if isinstance(param, Mapping) and "when" in param:
                param = dict(param)
                conditions[name] = param.pop("when")
            try:
                distributions[name] = distribution_from_dict(param)
            except ConfigError as exc:
                raise ConfigError(f"space.{name}: {exc}") from None
        try:
            return cls(distributions, conditions)
        except ConfigError as exc:
            raise ConfigError(f"space: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> SearchSpace:
        return cls.from_dict(json.loads(text))
