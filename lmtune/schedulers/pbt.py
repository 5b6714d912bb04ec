"""Population-based training (Jaderberg et al. 2017), asynchronous, with trials as segments of a lineage.

* The first ``population_size`` trials start from the sampler.
* **Exploit**: every ``perturbation_interval`` steps a trial is ranked against all trials that reported at the same
  step; one in the bottom ``quantile`` is stopped (PRUNED).
* **Explore**: the next trial asked replaces it: it copies the parameters and the checkpoint of a trial in the top
  ``quantile`` at that step and perturbs them (each numeric parameter multiplied by one of ``perturb_factors`` and
  clipped, or with ``resample_probability`` any parameter drawn anew). It starts from the parent's checkpoint, so
  its reports continue after the step it inherited.

The lineage is kept in the child's system attributes: ``pbt_parent`` (the trial whose checkpoint it copied),
``pbt_replaces`` (the trial it replaces), ``pbt_step`` (the step it starts after) and ``pbt_generation``;
``inherit_checkpoint_of`` asks the study to copy the parent's checkpoint folder into the child's and set
``trial.resume_from`` to it. Draws are keyed by the seed and trial numbers, so decisions stay pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler, TrialStart
from lmtune.space import CategoricalDistribution, SearchSpace
from lmtune.trial import Lineage, TrialRecord, TrialState

__all__ = ["PopulationBasedTraining"]


class PopulationBasedTraining(Scheduler):
    """Exploit/explore every ``perturbation_interval`` steps (resource units) up to ``max_resource``."""

    copies_checkpoints = True

    def __init__(
        self,
        max_resource: int,
        population_size: int = 8,
        perturbation_interval: int = 1,
        quantile: float = 0.25,
        resample_probability: float = 0.25,
        perturb_factors: Sequence[float] = (0.8, 1.2),
        *,
        resource: str = "epoch",
        seed: int = 0,
    ) -> None:
        for name, value, low in (
            ("max_resource", max_resource, 1),
            ("population_size", population_size, 2),
            ("perturbation_interval", perturbation_interval, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"scheduler.{name} must be an integer >= {low}, but got {value!r}")
        if not isinstance(quantile, (int, float)) or not 0 < quantile <= 0.5:
            raise ConfigError(f"scheduler.quantile must be in (0, 0.5], but got {quantile!r}")
        if not isinstance(resample_probability, (int, float)) or not 0 <= resample_probability <= 1:
            raise ConfigError(
                f"scheduler.resample_probability must be in [0, 1], but got {resample_probability!r}"
            )
        if not perturb_factors or any(not isinstance(f, (int, float)) or f <= 0 for f in perturb_factors):
            raise ConfigError(
                f"scheduler.perturb_factors must be positive numbers, but got {perturb_factors!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"scheduler.seed must be a non-negative integer, but got {seed!r}")
        self.max_resource = max_resource
        self.population_size = population_size
        self.perturbation_interval = perturbation_interval
        self.quantile = float(quantile)
        self.resample_probability = float(resample_probability)
        self.perturb_factors = tuple(float(f) for f in perturb_factors)
        self.resource = resource
        self.seed = seed

    def _rng(self, *keys: int) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *keys])))

    def _ranked_at(self, step: int, history: TrialHistory) -> list[TrialRecord]:
        at_step = [r for r in history if r.state is not TrialState.FAILED and step in r.intermediate]
        return sorted(at_step, key=lambda r: (history.signed(r.intermediate[step]), r.number))

    def _cut(self, n: int) -> int:
        return int(n * self.quantile)

    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        step = trial.last_step
        if step is None or step >= self.max_resource or step % self.perturbation_interval:
            return CONTINUE
        ranked = self._ranked_at(step, history)
        cut = self._cut(len(ranked))
        if cut < 1 or len(ranked) < self.population_size:
            return CONTINUE
        if any(r.number == trial.number for r in ranked[len(ranked) - cut :]):
            return Decision(Action.STOP, f"bottom {self.quantile:.0%} at {self.resource} {step}: exploited")
        return CONTINUE

    def next_trial(self, history: TrialHistory) -> TrialStart:
        if len(history) < self.population_size:
            return TrialStart(budget=self.max_resource, lineage=Lineage())
        replaced = {r.lineage.replaces for r in history if r.lineage is not None}
        for record in history:
            step = record.last_step
            if (
                record.state is TrialState.PRUNED
                and record.number not in replaced
                and step is not None
                and step < self.max_resource
                and step % self.perturbation_interval == 0
            ):
                return self._replacement(record, step, history)
        return TrialStart(budget=self.max_resource, lineage=Lineage())

    def _replacement(self, stopped: TrialRecord, step: int, history: TrialHistory) -> TrialStart:
        ranked = self._ranked_at(step, history)
        top = ranked[: max(1, self._cut(len(ranked)))]
        rng = self._rng(stopped.number, step)
        parent = top[int(rng.integers(len(top)))]
        space = history.space or SearchSpace(dict(parent.distributions))
        params = self.explore(parent.params, space, rng)
        generation = parent.lineage.generation if parent.lineage is not None else 0
        lineage = Lineage(generation + 1, parent=parent.number, replaces=stopped.number, step=step)
        return TrialStart(
            budget=self.max_resource, params=params, lineage=lineage, inherit_checkpoint_of=parent.number
        )

    def explore(
        self, params: Mapping[str, Any], space: SearchSpace, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Perturb ``params``: resample with ``resample_probability``, else scale numbers by a perturb factor."""
        new: dict[str, Any] = {}
        for name, value in params.items():
            dist = space.get(name, None)
            if dist is None:
                new[name] = value
            elif rng.random() < self.resample_probability:
                new[name] = dist.from_unit(float(rng.random()))
            elif isinstance(dist, CategoricalDistribution) or isinstance(value, bool):
                new[name] = value
            else:
                factor = self.perturb_factors[int(rng.integers(len(self.perturb_factors)))]
                low, high = dist.low, dist.high  # type: ignore[attr-defined]
                new[name] = dist.from_unit(dist.to_unit(min(max(value * factor, low), high)))
        return new

    def describe(self) -> dict[str, Any]:
        return {
            "name": "PopulationBasedTraining",
            "max_resource": self.max_resource,
            "population_size": self.population_size,
            "perturbation_interval": self.perturbation_interval,
            "quantile": self.quantile,
            "resample_probability": self.resample_probability,
            "perturb_factors": list(self.perturb_factors),
            "seed": self.seed,
        }
