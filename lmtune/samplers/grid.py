"""Exhaustive grid search, resumable: a rerun continues where the grid stopped and never repeats a point."""

from __future__ import annotations

import json
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.samplers.base import Sampler
from lmtune.space import SearchSpace
from lmtune.trial import TrialState

__all__ = ["GridSampler"]

_TAKEN = (TrialState.WAITING, TrialState.RUNNING, TrialState.PAUSED, TrialState.COMPLETE, TrialState.PRUNED)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


class GridSampler(Sampler):
    """Visits :meth:`SearchSpace.grid` in order (shuffled by the seed when ``shuffle``), skipping points that
    a trial already holds. FAILED trials free their point so it is tried again. Needs a declared space."""

    def __init__(self, seed: int | None = None, *, shuffle: bool = False) -> None:
        super().__init__(seed)
        self.shuffle = shuffle
        self._grids: dict[str, list[dict[str, Any]]] = {}

    def _grid(self, space: SearchSpace) -> list[dict[str, Any]]:
        key = space.to_json()
        if key not in self._grids:
            grid = space.grid()
            if self.shuffle:
                order = self.rng(0, "grid-order").permutation(len(grid))
                grid = [grid[i] for i in order]
            self._grids[key] = grid
        return self._grids[key]

    def _remaining(self, space: SearchSpace, history: TrialHistory) -> list[dict[str, Any]]:
        taken = {_key(dict(r.params)) for r in history if r.state in _TAKEN}
        return [p for p in self._grid(space) if _key(p) not in taken]

    def suggest(self, space: SearchSpace, history: TrialHistory, trial_number: int) -> dict[str, Any]:
        if len(space) == 0:
            raise ConfigError("grid search needs a declared space (`space:` in the study file or `space=`)")
        remaining = self._remaining(space, history)
        if not remaining:
            # Everything is taken (e.g. by trials still running): repeat a point rather than fail.
            grid = self._grid(space)
            return dict(grid[trial_number % len(grid)])
        return dict(remaining[0])

    def is_exhausted(self, space: SearchSpace | None, history: TrialHistory) -> bool:
        if space is None or len(space) == 0:
            return False
        return not self._remaining(space, history)
