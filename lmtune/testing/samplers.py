"""The sampler conformance suite: checks every sampler, built in or plugged in, must pass.

Subclass :class:`SamplerConformance` in a test module and set ``sampler_class`` (and ``sampler_options``)::

    class TestMySampler(SamplerConformance):
        sampler_class = MySampler

pytest then collects the ``test_*`` methods. The suite itself needs nothing but lmtune (pytest is not imported),
and histories are synthetic and deterministic, so failures reproduce exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, ClassVar

import numpy as np

from lmtune.history import TrialHistory
from lmtune.samplers.base import Sampler
from lmtune.space import FloatDistribution, IntDistribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["MIXED_CONDITIONAL_SPACE", "SamplerConformance", "synthetic_history"]

#: A space with every kind of dimension and a conditional branch.
MIXED_CONDITIONAL_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "layers": {"type": "int", "low": 1, "high": 8},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.05},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"optimizer": ["sgd"]}},
    "beta2": {"type": "float", "low": 0.9, "high": 0.9999, "when": {"optimizer": ["adam"]}},
}


def _loss(params: dict[str, Any]) -> float:
    value = (np.log10(params["lr"]) + 3.0) ** 2 + 0.1 * (params["layers"] - 4) ** 2 + params["dropout"]
    if params["optimizer"] == "sgd":
        value += (params["momentum"] - 0.9) ** 2 + 0.5
    else:
        value += 100.0 * (params["beta2"] - 0.999) ** 2
    return float(value)


def synthetic_history(
    space: SearchSpace, n_complete: int, seed: int, *, n_running: int = 0, direction: str = "minimize"
) -> TrialHistory:
    """``n_complete`` COMPLETE trials at random points of ``space`` (values from a fixed smooth function where the
    space is :data:`MIXED_CONDITIONAL_SPACE`, else from the unit-cube distance to 0.3), then ``n_running`` RUNNING
    ones."""
    rng = np.random.default_rng(seed)
    known = set(space) == set(MIXED_CONDITIONAL_SPACE)
    records = []
    for number in range(n_complete + n_running):
        params = space.from_unit(rng.random(len(space)))
        running = number >= n_complete
        value = _loss(params) if known else float(np.nansum((space.to_unit(params) - 0.3) ** 2))
        records.append(
            TrialRecord(
                trial_id=number,
                number=number,
                state=TrialState.RUNNING if running else TrialState.COMPLETE,
                params=params,
                distributions={name: space[name] for name in params},
                value=None if running else value,
                seq=number,
            )
        )
    return TrialHistory(tuple(records), direction, space)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=float)


class SamplerConformance:
    """The checks. Set ``sampler_class`` (importable by module and name) and optionally ``sampler_options``;
    ``history_sizes`` lists history lengths to check at (include one beyond the sampler's start-up phase)."""

    sampler_class: ClassVar[type[Sampler]]
    sampler_options: ClassVar[dict[str, Any]] = {}
    history_sizes: ClassVar[tuple[int, ...]] = (0, 25)
    #: Whether the sampler models the history (grid search ignores seeds, so "seeds differ" does not apply).
    seed_sensitive: ClassVar[bool] = True
    #: Whether the sampler works on spaces inferred from define-by-run trials (grid search needs a declared one).
    supports_define_by_run: ClassVar[bool] = True

    def make_sampler(self, seed: int) -> Sampler:
        return self.sampler_class(seed=seed, **self.sampler_options)

    def space(self) -> SearchSpace:
        return SearchSpace.from_dict(MIXED_CONDITIONAL_SPACE)

    def _suggest(self, seed: int, n: int, number: int | None = None) -> dict[str, Any]:
        space = self.space()
        history = synthetic_history(space, n, seed=100 + n)
        return self.make_sampler(seed).suggest(space, history, n if number is None else number)

    def test_same_seed_same_suggestion(self) -> None:
        for n in self.history_sizes:
            first = self._suggest(3, n)
            second = self._suggest(3, n)
            assert _json(first) == _json(second), f"history of {n}: {first} != {second}"

    def test_same_suggestion_in_another_process(self) -> None:
        n = max(self.history_sizes)
        here = self._suggest(5, n)
        cls = type(self)
        code = (
            f"import json, sys; sys.path[:0] = {sys.path!r}\n"
            f"from {cls.__module__} import {cls.__qualname__} as Suite\n"
            f"print(json.dumps(Suite()._suggest(5, {n}), sort_keys=True, default=float))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
        )
        assert out.stdout.strip().splitlines()[-1] == _json(here)

    def test_different_seeds_differ(self) -> None:
        if not self.seed_sensitive:
            return
        for n in self.history_sizes:
            suggestions = {_json(self._suggest(seed, n)) for seed in range(4)}
            assert len(suggestions) > 1, f"history of {n}: four seeds gave the same suggestion"

    def test_only_active_parameters_inside_their_distributions(self) -> None:
        space = self.space()
        for n in self.history_sizes:
            for number in range(n, n + 6):
                params = self._suggest(11, n, number)
                # validate() raises on unknown, inactive, missing or illegal values.
                assert space.validate(params) == params
                for name in space:
                    assert (name in params) == space.is_active(name, params), (name, params)

    def test_maximize_direction_is_accepted(self) -> None:
        space = self.space()
        for n in self.history_sizes:
            history = synthetic_history(space, n, seed=7, direction="maximize")
            space.validate(self.make_sampler(1).suggest(space, history, n))

    def test_running_trials_are_tolerated(self) -> None:
        space = self.space()
        n = max(self.history_sizes)
        history = synthetic_history(space, n, seed=8, n_running=3)
        space.validate(self.make_sampler(2).suggest(space, history, n + 3))

    def test_define_by_run_suggest_one(self) -> None:
        space = self.space()
        sampler = self.make_sampler(4)
        for n in self.history_sizes:
            history = synthetic_history(space, n, seed=9)
            for dist in (FloatDistribution(1e-4, 1.0, log=True), IntDistribution(2, 40, step=2)):
                values = {_json(sampler.suggest_one("extra", dist, history, n + k, {})) for k in range(4)}
                for value in values:
                    assert dist.contains(json.loads(value))
                again = sampler.suggest_one("extra", dist, history, n, {})
                assert again == sampler.suggest_one("extra", dist, history, n, {})

    def test_inferred_space_of_define_by_run(self) -> None:
        """A flat space as :meth:`TrialHistory.inferred_space` builds it (no declared space in the history)."""
        if not self.supports_define_by_run:
            return
        space = SearchSpace({"x": FloatDistribution(-1.0, 1.0), "k": IntDistribution(1, 5)})
        for n in self.history_sizes:
            records = synthetic_history(space, n, seed=12).records
            history = TrialHistory(records, "minimize", None)
            params = self.make_sampler(6).suggest(space, history, n)
            assert set(params) == {"x", "k"} and space.validate(params) == params

    def test_settings_rebuild_the_sampler(self) -> None:
        """``describe()`` and pickling both come from ``settings()``: a rebuilt or unpickled copy describes itself
        and suggests alike."""
        import pickle

        sampler = self.make_sampler(13)
        described = _json(sampler.describe())
        assert json.loads(described)["name"] == type(sampler).__name__
        for copy in (type(sampler)(**sampler.settings()), pickle.loads(pickle.dumps(sampler))):
            assert _json(copy.describe()) == described
        space = self.space()
        n = max(self.history_sizes)
        history = synthetic_history(space, n, seed=14)
        again = pickle.loads(pickle.dumps(sampler))
        assert _json(again.suggest(space, history, n)) == _json(sampler.suggest(space, history, n))
