"""Hyperband (Li et al. 2018) in its asynchronous form: several ASHA ladders (brackets) side by side.

Bracket ``b`` starts its trials at rung ``b`` (so bracket 0 is the most aggressive, the last bracket trains every
trial to ``max_resource``). Each new trial joins a bracket drawn with the probabilities of synchronous Hyperband's
trial counts, ``n_b ~ (s+1)/(s-b+1) * eta**(s-b)`` for ``s+1`` rungs. The draw is keyed by the seed and the number
of trials in the history, so any worker (and a restarted study) draws the same. Trials are compared only with
trials of their own bracket.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lmtune.history import TrialHistory
from lmtune.schedulers.successive_halving import SuccessiveHalving

__all__ = ["Hyperband", "bracket_probabilities"]


def bracket_probabilities(n_rungs: int, reduction_factor: float) -> np.ndarray:
    """The share of new trials each bracket gets: proportional to synchronous Hyperband's trial counts."""
    s = n_rungs - 1
    counts = np.array(
        [math.ceil((s + 1) / (s - b + 1) * reduction_factor ** (s - b)) for b in range(n_rungs)]
    )
    return counts / counts.sum()


class Hyperband(SuccessiveHalving):
    """Asynchronous Hyperband: brackets of ASHA (stop form by default, ``pause=True`` for pause-and-promote).

    ``n_brackets`` limits the brackets to the most aggressive ones (default: one per rung). ``seed`` keys the
    bracket draws.
    """

    def __init__(
        self,
        max_resource: int,
        min_resource: int = 1,
        reduction_factor: float = 3,
        *,
        pause: bool = False,
        resource: str = "epoch",
        n_brackets: int | None = None,
        seed: int = 0,
        full_share: float = 0.0,
        rank_by: str = "value",
        first_pass: bool = True,
    ) -> None:
        super().__init__(
            max_resource,
            min_resource,
            reduction_factor,
            pause=pause,
            resource=resource,
            full_share=full_share,
            rank_by=rank_by,
            first_pass=first_pass,
        )
        from lmtune.exceptions import ConfigError

        n = len(self.levels) if n_brackets is None else n_brackets
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(self.levels):
            raise ConfigError(
                f"scheduler.n_brackets must be an integer from 1 to {len(self.levels)} (the number of rungs "
                f"{self.levels}), but got {n_brackets!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"scheduler.seed must be a non-negative integer, but got {seed!r}")
        self.n_brackets = n
        self.seed = seed
        probabilities = bracket_probabilities(len(self.levels), reduction_factor)[:n]
        self.bracket_probabilities = probabilities / probabilities.sum()

    def new_bracket(self, history: TrialHistory) -> int:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, len(history), 0xB2AC])))
        return int(rng.choice(self.n_brackets, p=self.bracket_probabilities))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "n_brackets": self.n_brackets, "seed": self.seed}
