"""Model-based Hyperband (BOHB, Falkner et al. 2018), asynchronous: Hyperband's brackets decide *when*, a
model-based sampler fitted on one rung's results proposes *what*.

For each new trial the model (TPE by default, or the GP sampler) is fitted on the highest rung that has at least
``min_points_in_model`` results (default: the number of parameters + 1), treating each trial's report at that
rung as its value; trials still running below that rung are passed as RUNNING so the model can spread parallel
proposals. A share ``random_fraction`` of new trials is drawn uniformly, which keeps the search global. Promotions
and stops are Hyperband's. All draws are keyed by the seed and the number of trials, so decisions stay pure.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.history import TrialHistory
from lmtune.samplers.base import Sampler
from lmtune.samplers.random import RandomSampler
from lmtune.schedulers.base import TrialStart
from lmtune.schedulers.hyperband import Hyperband
from lmtune.trial import TrialState

__all__ = ["BOHB"]

# Model name -> (module, class), imported on first use: the model samplers are optional parts of the package.
MODELS = {"tpe": ("lmtune.samplers.tpe", "TPESampler"), "gp": ("lmtune.samplers.gp", "GPSampler")}


class BOHB(Hyperband):
    """Hyperband whose new trials come from a model fitted on the highest rung with enough results."""

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
        model: str = "tpe",
        random_fraction: float = 1 / 3,
        min_points_in_model: int | None = None,
    ) -> None:
        super().__init__(
            max_resource,
            min_resource,
            reduction_factor,
            pause=pause,
            resource=resource,
            n_brackets=n_brackets,
            seed=seed,
        )
        if model not in MODELS:
            raise ConfigError(f"scheduler.model must be one of {sorted(MODELS)}, but got {model!r}")
        if (
            isinstance(random_fraction, bool)
            or not isinstance(random_fraction, (int, float))
            or not (0 <= random_fraction <= 1)
        ):
            raise ConfigError(f"scheduler.random_fraction must be in [0, 1], but got {random_fraction!r}")
        if min_points_in_model is not None and (
            isinstance(min_points_in_model, bool)
            or not isinstance(min_points_in_model, int)
            or min_points_in_model < 2
        ):
            raise ConfigError(
                f"scheduler.min_points_in_model must be an integer >= 2, but got {min_points_in_model!r}"
            )
        self.model = model
        self.random_fraction = float(random_fraction)
        self.min_points_in_model = min_points_in_model
        self._random = RandomSampler(seed=seed)
        self._sampler: Sampler | None = None

    def model_sampler(self) -> Sampler:
        """The model sampler, imported on first use."""
        if self._sampler is None:
            module_name, class_name = MODELS[self.model]
            try:
                cls = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError) as exc:
                raise MissingDependencyError(
                    f"scheduler bohb with model {self.model!r} needs {module_name}.{class_name}, which could not be "
                    f"imported ({exc}); choose another model"
                ) from None
            # The rung history handed to the model always has enough points: no start-up phase of its own.
            self._sampler = cls(seed=self.seed, n_startup_trials=0)
        return self._sampler

    def next_trial(self, history: TrialHistory) -> TrialStart:
        start = super().next_trial(history)
        if start.resume_number is not None or history.space is None or len(history.space) == 0:
            return start
        return replace(start, params=self.propose(history))

    def propose(self, history: TrialHistory) -> dict[str, Any]:
        """Parameters of the next new trial: uniform for a ``random_fraction`` share, else from the model."""
        assert history.space is not None  # checked by the caller
        number = len(history)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, number, 0xB0B])))
        fitted = self.rung_history(history)
        if fitted is None or rng.random() < self.random_fraction:
            return self._random.suggest(history.space, history, number)
        return self.model_sampler().suggest(history.space, fitted, number)

    def rung_history(self, history: TrialHistory) -> TrialHistory | None:
        """The history as the model sees it: each trial's value at the highest rung with enough results (None
        while no rung has enough)."""
        space = history.space
        needed = self.min_points_in_model or (len(space) + 1 if space is not None else 2)
        for level in reversed(self.levels):
            at_level = [r for r in history if r.state is not TrialState.FAILED and level in r.intermediate]
            if len(at_level) < needed:
                continue
            as_done = [r.replace(state=TrialState.COMPLETE, value=r.intermediate[level]) for r in at_level]
            # Running trials spread parallel proposals; trials stopped below the level count as bad points.
            others = [
                r
                for r in history
                if level not in r.intermediate and r.state in (TrialState.RUNNING, TrialState.PRUNED)
            ]
            records = tuple(sorted(as_done + others, key=lambda r: r.number))
            return TrialHistory(records, history.direction, space)
        return None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model": self.model,
            "random_fraction": self.random_fraction,
            "min_points_in_model": self.min_points_in_model,
        }
