"""``sampler: auto``, the default: picks grid, GP or TPE from the space, the budget and the history so far.

* grid, when the declared space is finite and small (at most the budget, or ``grid_max_size`` configurations
  when the budget is open-ended): every configuration is tried once and the study stops;
* GP-based BO while the space has at most ``gp_max_params`` parameters and fewer than ``gp_max_trials`` trials
  have finished (the GP finds good points with fewer trials; its cost grows with the history);
* TPE otherwise: many parameters, long studies (it takes over once ``gp_max_trials`` trials have finished, or from
  the start when the budget exceeds ``4 * gp_max_trials``), and categorical-heavy spaces: at least
  ``tpe_min_categoricals`` categorical parameters with three or more choices each. The GP models a categorical
  through one smooth coordinate, so with several many-valued categoricals it keeps the combination of its first good
  point; TPE models each categorical by its own frequencies among good and bad trials and keeps exploring them.

The choice is a function of (space, history, budget), so every worker makes the same one, and each change is logged
with its reason. Define-by-run parameters outside the modelled space get univariate TPE.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from lmtune.history import TrialHistory
from lmtune.samplers._options import check_int
from lmtune.samplers.base import Sampler
from lmtune.samplers.gp import GPSampler
from lmtune.samplers.grid import GridSampler
from lmtune.samplers.tpe import IndependentTPE
from lmtune.space import CategoricalDistribution, SearchSpace
from lmtune.trial import TrialState

__all__ = ["AutoSampler"]

logger = logging.getLogger("lmtune")


class AutoSampler(IndependentTPE):
    """Chooses grid, GP or TPE per suggestion (see the module docstring); ``n_trials`` is the budget, if known."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        n_trials: int | None = None,
        gp_max_params: int = 12,
        gp_max_trials: int = 300,
        grid_max_size: int = 32,
        tpe_min_categoricals: int = 2,
    ) -> None:
        super().__init__(seed)
        self.n_trials = None if n_trials is None else check_int("n_trials", n_trials, 1)
        self.gp_max_params = check_int("gp_max_params", gp_max_params, 0)
        self.gp_max_trials = check_int("gp_max_trials", gp_max_trials, 0)
        self.grid_max_size = check_int("grid_max_size", grid_max_size, 0)
        self.tpe_min_categoricals = check_int("tpe_min_categoricals", tpe_min_categoricals, 1)
        self.grid = GridSampler(seed=self.seed)
        self.gp = GPSampler(seed=self.seed)
        self._announced: dict[str, str] = {}
        self._last_announced: tuple[SearchSpace, str] | None = None
        # Decisions that depend on the space alone, by space object (a study passes the same one every trial).
        self._by_space: dict[tuple[int, bool], tuple[SearchSpace, tuple[Sampler, str] | None]] = {}
        self._lock = threading.Lock()

    def choose(self, space: SearchSpace, history: TrialHistory) -> tuple[Sampler, str]:
        """The sampler for the next suggestion in ``space`` and the reason, in words."""
        declared = history.space is not None and (history.space is space or history.space == space)
        key = (id(space), declared)
        with self._lock:
            known = self._by_space.get(key)
        if known is None or known[0] is not space:
            known = (space, self._choose_by_space(space, declared))
            with self._lock:
                if len(self._by_space) > 64:
                    self._by_space.clear()
                self._by_space[key] = known
        if known[1] is not None:
            return known[1]
        complete = TrialState.COMPLETE
        finished = sum(1 for r in history.records if r.state is complete)
        if finished >= self.gp_max_trials:
            return self.tpe, f"{finished} finished trials >= {self.gp_max_trials}: TPE's cost stays flat"
        d = len(space)
        return (
            self.gp,
            f"{d} parameters <= {self.gp_max_params} and {finished} finished trials < {self.gp_max_trials}",
        )

    def _choose_by_space(self, space: SearchSpace, declared: bool) -> tuple[Sampler, str] | None:
        """The choice where the space and the budget settle it, else None (the history decides)."""
        grid_limit = self.n_trials if self.n_trials is not None else self.grid_max_size
        if declared and len(space) and space.is_small_grid(grid_limit):
            return self.grid, f"the space is a grid of at most {grid_limit} configurations"
        d = len(space)
        if d > self.gp_max_params:
            return self.tpe, f"{d} parameters > {self.gp_max_params}, too many for the GP"
        many_valued = [
            n
            for n, dist in space.items()
            if isinstance(dist, CategoricalDistribution) and len(dist.choices) >= 3
        ]
        if len(many_valued) >= self.tpe_min_categoricals:
            return self.tpe, (
                f"{len(many_valued)} categorical parameters with 3 or more choices ({', '.join(many_valued)}) "
                f">= {self.tpe_min_categoricals}: TPE models categoricals better than the GP"
            )
        if self.n_trials is not None and self.n_trials > 4 * self.gp_max_trials:
            return self.tpe, f"a long study ({self.n_trials} trials): TPE's cost stays flat"
        return None

    def _announce(self, space: SearchSpace, sampler: Sampler, reason: str) -> None:
        name = type(sampler).__name__
        last = self._last_announced
        if last is not None and last[0] is space and last[1] == name:
            return
        key = space.to_json()
        with self._lock:
            self._last_announced = (space, name)
            if self._announced.get(key) == name:
                return
            self._announced[key] = name
        logger.info("sampler auto: using %s (%s)", name, reason)

    def suggest(self, space: SearchSpace, history: TrialHistory, trial_number: int) -> dict[str, Any]:
        if len(space) == 0:
            return {}
        sampler, reason = self.choose(space, history)
        self._announce(space, sampler, reason)
        return sampler.suggest(space, history, trial_number)

    def is_exhausted(self, space: SearchSpace | None, history: TrialHistory) -> bool:
        if space is None or len(space) == 0:
            return False
        sampler, _ = self.choose(space, history)
        return sampler is self.grid and self.grid.is_exhausted(space, history)
