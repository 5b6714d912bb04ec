"""Keras Tuner's ``hp`` object, answered by lmtune: ``build_model(hp)`` runs unchanged without Keras Tuner.

``hp.Int``, ``hp.Float`` (``sampling="linear"`` or ``"log"``), ``hp.Choice``, ``hp.Boolean`` and ``hp.Fixed``
become lmtune parameters with the same values; ``hp.conditional_scope(parent, values)`` (or ``parent_name=`` /
``parent_values=``) makes the parameters inside it conditional on the parent, and inside an inactive scope they
return None, as in Keras Tuner. Keras Tuner's ``step`` on a log scale is a factor (``Int(2, 32, step=2,
sampling="log")`` means 2, 4, 8, 16, 32): those values become a categorical parameter.

An :class:`HyperParameters` answers in one of three ways: from a trial (each call suggests through the trial), from
fixed values (the best configuration, to build the best model again), or while recording the search space, which
:func:`discover_space` does by building the model with the defaults and then with each conditional branch opened.
This module does not import Keras.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.space import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    SearchSpace,
)
from lmtune.trial import Trial

__all__ = ["HyperParameters", "discover_space"]

MAX_DISCOVERY_BUILDS = 16  # model builds spent opening conditional branches while recording the space
MAX_BRANCH_CHOICES = 8  # categoricals with more choices than this are not opened one by one
SAMPLINGS = ("linear", "log")

Condition = tuple[str, tuple[Any, ...]]


def _geometric(low: float, high: float, factor: float, integer: bool) -> list[Any]:
    """Keras Tuner's log scale with a step: ``low, low * factor, ...`` up to ``high``."""
    if factor <= 1:
        raise ConfigError(f"a log-scale step is a factor and must be > 1, but got step={factor!r}")
    values, value = [], low
    while value <= high * (1 + 1e-12):
        values.append(int(round(value)) if integer else value)
        value *= factor
    return values


def _on_grid(low: float, high: float, step: float) -> float:
    """The largest ``low + k * step`` not above ``high`` (Keras Tuner's last value)."""
    return low + math.floor((high - low) / step + 1e-9) * step


def _number_distribution(
    name: str, low: Any, high: Any, step: Any, sampling: str | None, integer: bool
) -> Distribution:
    sampling = sampling or "linear"
    if sampling not in SAMPLINGS:
        raise ConfigError(f"hp {name!r}: sampling must be one of {list(SAMPLINGS)}, but got {sampling!r}")
    if sampling == "log" and step is not None:
        return CategoricalDistribution(_geometric(low, high, step, integer))
    if integer:
        step = int(step or 1)
        return IntDistribution(int(low), int(_on_grid(low, high, step)), step=step, log=sampling == "log")
    if step is not None:
        high = _on_grid(low, high, step)
    return FloatDistribution(float(low), float(high), step=step, log=sampling == "log")


class HyperParameters:
    """The ``hp`` given to ``build_model(hp)``: Keras Tuner's methods, lmtune's parameters underneath.

    Build one with :meth:`for_trial`, :meth:`from_values` or :meth:`recording` (used by :func:`discover_space`).
    ``values`` holds the active values, Fixed ones included.
    """

    def __init__(self, answer: Callable[[str, Distribution, Any], Any]) -> None:
        self._answer = answer
        self._conditions: list[Condition] = []
        self.values: dict[str, Any] = {}
        self.distributions: dict[str, Distribution] = {}
        self.conditions: dict[str, dict[str, tuple[Any, ...]]] = {}
        self.fixed: dict[str, Any] = {}
        self.scopes: list[tuple[Condition, bool]] = []  # each scope opened, and whether it was active

    # The three sources ------------------------------------------------------------------------------------------
    @classmethod
    def for_trial(cls, trial: Trial) -> HyperParameters:
        """Each parameter is suggested through ``trial`` (its stored value when the study's space declares it)."""

        def answer(name: str, dist: Distribution, default: Any) -> Any:
            if isinstance(dist, FloatDistribution):
                return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
            if isinstance(dist, IntDistribution):
                return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
            assert isinstance(dist, CategoricalDistribution)
            return trial.suggest_categorical(name, dist.choices)

        return cls(answer)

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> HyperParameters:
        """Parameters take ``values`` (a trial's ``params``); one not given takes its default."""
        known = dict(values)
        return cls(lambda name, dist, default: known.get(name, default))

    @classmethod
    def recording(cls, pinned: Mapping[str, Any] | None = None) -> HyperParameters:
        """Parameters take their defaults, or the ``pinned`` value; what was declared is kept."""
        pins = dict(pinned or {})
        return cls(lambda name, dist, default: pins.get(name, default))

    # Keras Tuner's API --------------------------------------------------------------------------------------------
    def Int(  # noqa: N802 - Keras Tuner's names
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> int | None:
        """An integer in ``[min_value, max_value]`` (both included)."""
        dist = _number_distribution(name, min_value, max_value, step, sampling, integer=True)
        return self._value(name, dist, min_value if default is None else default, parent_name, parent_values)

    def Float(  # noqa: N802
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> float | None:
        """A float in ``[min_value, max_value]``; ``sampling="log"`` for learning rates and the like."""
        dist = _number_distribution(name, min_value, max_value, step, sampling, integer=False)
        return self._value(name, dist, min_value if default is None else default, parent_name, parent_values)

    def Choice(  # noqa: N802
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Any = None,
    ) -> Any:
        """One of ``values``."""
        dist = CategoricalDistribution(list(values))
        return self._value(name, dist, values[0] if default is None else default, parent_name, parent_values)

    def Boolean(  # noqa: N802
        self, name: str, default: bool = False, parent_name: str | None = None, parent_values: Any = None
    ) -> bool | None:
        """True or False."""
        return self._value(name, CategoricalDistribution([False, True]), default, parent_name, parent_values)

    def Fixed(  # noqa: N802
        self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None
    ) -> Any:
        """Always ``value``: recorded with the trial's values, not searched."""
        with self._maybe_scope(parent_name, parent_values):
            if not self._active():
                return None
            self.fixed[name] = value
            self.values[name] = value
            return value

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Parameters declared inside are active only while ``parent_name`` takes one of ``parent_values``."""
        if parent_name not in self.distributions and parent_name not in self.fixed:
            raise ConfigError(
                f"hp.conditional_scope({parent_name!r}, ...): declare {parent_name!r} (hp.Choice, hp.Boolean, ...) "
                f"before the scope that depends on it"
            )
        allowed = tuple(parent_values) if isinstance(parent_values, (list, tuple)) else (parent_values,)
        condition = (parent_name, allowed)
        self._conditions.append(condition)
        self.scopes.append((condition, self._active()))
        try:
            yield
        finally:
            self._conditions.pop()

    def get(self, name: str) -> Any:
        """The value of an active parameter."""
        if name in self.values:
            return self.values[name]
        if name in self.distributions:
            raise ValueError(f"{name} is currently inactive.")
        raise KeyError(f"{name} does not exist.")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def __repr__(self) -> str:
        return f"HyperParameters({self.values!r})"

    # Internals ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _maybe_scope(self, parent_name: str | None, parent_values: Any) -> Iterator[None]:
        if parent_name is None:
            yield
        else:
            with self.conditional_scope(parent_name, parent_values):
                yield

    def _active(self) -> bool:
        return all(
            parent in self.values and _json(self.values[parent]) in {_json(v) for v in allowed}
            for parent, allowed in self._conditions
        )

    def _value(
        self, name: str, dist: Distribution, default: Any, parent_name: Any, parent_values: Any
    ) -> Any:
        with self._maybe_scope(parent_name, parent_values):
            known = self.distributions.get(name)
            if known is not None and known != dist:
                raise ConfigError(
                    f"hp {name!r} is declared twice with different ranges: {known.describe()} and {dist.describe()}"
                )
            self.distributions[name] = dist
            if self._conditions:
                conditions = self.conditions.setdefault(name, {})
                for parent, allowed in self._conditions:
                    conditions[parent] = allowed
            if not self._active():
                return None
            if name not in self.values:
                self.values[name] = self._answer(name, dist, default)
            return self.values[name]


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _space_of(recorded: HyperParameters) -> SearchSpace:
    """The recorded parameters and their conditions; a condition on a Fixed parent is resolved here."""
    distributions = dict(recorded.distributions)
    conditions: dict[str, dict[str, tuple[Any, ...]]] = {}
    for child, parents in recorded.conditions.items():
        kept = {}
        for parent, allowed in parents.items():
            if parent in recorded.fixed:
                if _json(recorded.fixed[parent]) not in {_json(v) for v in allowed}:
                    distributions.pop(child, None)  # never active
                continue
            kept[parent] = allowed
        if kept and child in distributions:
            conditions[child] = kept
    return SearchSpace(distributions, conditions)


def discover_space(build: Callable[[HyperParameters], Any]) -> SearchSpace:
    """Record the search space of ``build(hp)``: build with the defaults, then with the other values of small
    categoricals and with closed conditional scopes opened, breadth first (at most ``MAX_DISCOVERY_BUILDS``
    builds); a parameter found only later, such as ``units_2`` of a loop over ``hp.Int("layers", 1, 3)``, is
    suggested define-by-run when a trial meets it."""
    merged = HyperParameters.recording()
    queue: list[dict[str, Any]] = [{}]
    tried: set[str] = set()
    while queue and len(tried) < MAX_DISCOVERY_BUILDS:
        pins = queue.pop(0)
        key = _json(pins)
        if key in tried:
            continue
        tried.add(key)
        hp = HyperParameters.recording(pins)
        build(hp)
        for name, dist in hp.distributions.items():
            known = merged.distributions.setdefault(name, dist)
            if known != dist:
                raise ConfigError(
                    f"hp {name!r} is declared with different ranges: {known.describe()} and {dist.describe()}"
                )
        for name, parents in hp.conditions.items():
            merged.conditions.setdefault(name, {}).update(parents)
        merged.fixed.update(hp.fixed)
        queue += _branches(hp, pins)
    return _space_of(merged)


def _branches(hp: HyperParameters, pins: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Pins to build with next: each other value of a small categorical (a branch an ``if`` may open) and the
    first allowed value of each conditional scope that stayed closed."""
    branches = []
    for name, dist in hp.distributions.items():
        small = isinstance(dist, CategoricalDistribution) and len(dist.choices) <= MAX_BRANCH_CHOICES
        if small and name in hp.values and name not in pins:
            branches += [{**pins, name: c} for c in dist.choices if _json(c) != _json(hp.values[name])]
    for (parent, allowed), active in hp.scopes:
        if not active and parent in hp.distributions:
            branches.append({**pins, parent: allowed[0]})
    return branches
