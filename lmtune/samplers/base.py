"""The sampler contract: which configuration to try next, as a pure function of (space, history, seed)."""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from lmtune.history import TrialHistory
from lmtune.space import Distribution, SearchSpace

__all__ = ["Sampler"]


def _rebuild(cls: type[Sampler], settings: dict[str, Any]) -> Sampler:
    return cls(**settings)


def _key_int(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


class Sampler(ABC):
    """Base class of all samplers.

    Contract:

    * :meth:`suggest` returns a value for every *active* parameter of ``space`` (and nothing else), given a
      read-only :class:`~lmtune.history.TrialHistory` that includes RUNNING trials with their parameters.
    * It is deterministic: the same ``seed``, space, history and ``trial_number`` give the same suggestion, in any
      process. Randomness comes only from :meth:`rng` (keyed by seed and trial number), never from global state,
      so parallel workers reproduce each other's choices.
    * It never writes anything: caches kept on the instance must be rebuildable from the history.
    * It keeps each constructor argument under an attribute of the same name: :meth:`settings` reads them back,
      and both :meth:`describe` (the study's provenance) and pickling (a copy sent to a trial process, rebuilt
      from its settings with empty caches) come from there, so neither can drift from the constructor.
    """

    #: Whether the sampler reads past trials; the study skips building the history when False.
    needs_history: bool = True

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(2, np.uint32).astype(np.uint64)[0])
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            from lmtune.exceptions import ConfigError

            raise ConfigError(f"seed must be a non-negative integer, but got {seed!r}")
        self.seed = int(seed)

    def rng(self, trial_number: int, *keys: str) -> np.random.Generator:
        """A generator keyed by (seed, trial number, keys): independent of call order and worker."""
        entropy = [self.seed, int(trial_number), *(_key_int(k) for k in keys)]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    @abstractmethod
    def suggest(self, space: SearchSpace, history: TrialHistory, trial_number: int) -> dict[str, Any]:
        """Values for the active parameters of ``space`` for trial ``trial_number``."""

    def suggest_one(
        self,
        name: str,
        distribution: Distribution,
        history: TrialHistory,
        trial_number: int,
        params: Mapping[str, Any],
    ) -> Any:
        """A value for one define-by-run parameter outside the modelled space; uniform by default."""
        return distribution.from_unit(float(self.rng(trial_number, "independent", name).random()))

    def is_exhausted(self, space: SearchSpace | None, history: TrialHistory) -> bool:
        """Whether there is nothing left to try (a finished grid); the study then stops asking."""
        return False

    def settings(self) -> dict[str, Any]:
        """The constructor's keyword arguments that rebuild this sampler (scikit-learn's ``get_params`` idea)."""
        parameters = inspect.signature(type(self).__init__).parameters.values()
        names = [
            p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        missing = [name for name in names if not hasattr(self, name)]
        if missing:
            raise TypeError(
                f"{type(self).__name__} keeps no attribute {missing[0]!r} for its constructor argument of that "
                f"name; store each argument under its own name, or override settings()"
            )
        return {name: getattr(self, name) for name in names}

    def describe(self) -> dict[str, Any]:
        """Name and settings, recorded in the study's provenance."""
        return {"name": type(self).__name__, **self.settings()}

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its settings: caches and locks stay behind, and suggestions depend only on
        # (settings, space, history, trial number), so the rebuilt copy suggests the same.
        return (_rebuild, (type(self), self.settings()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"
