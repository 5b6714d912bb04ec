"""Model-based Hyperband (BOHB, Falkner et al. 2018), asynchronous: Hyperband's brackets decide *when*, a
model-based sampler fitted on the rungs' results proposes *what*.

The model (TPE by default; the GP sampler; or ``auto``, which picks GP or TPE per suggestion as ``sampler: auto``
does) sees one of three views of the history (``model_rungs``):

* ``"highest"`` (BOHB): the highest rung that has at least ``min_points_in_model`` results (default: the number
  of parameters + 1), each trial's report at that rung taken as its value; trials still running below that rung
  are passed as RUNNING so the model can spread parallel proposals, trials stopped below it count as bad points.
* ``"all"`` (in the spirit of Hyper-Tune, Li et al. 2022): every trial that reported, ranked first by the highest
  rung it reached and then by its value there, so the model learns from every rung at once and from the first
  reports on, and the trials that climbed furthest are the ones it imitates. With ``min_correlation`` set, a rung
  whose ranking disagrees with the highest rung's (Kendall's tau below it, measured on the trials that have both)
  is left out of the ladder, so misleading low fidelities stop steering the model (Hyper-Tune weighs its rungs by
  the same kind of agreement).
* ``"calibrated"`` (``auto``'s): every trial that reported, valued on the scale of the reference rung (the highest
  with :data:`MIN_PAIRS` reports): its value at the highest rung it reached, carried over by the least-squares line
  from that rung's values to the reference rung's on the trials that have both. The model then sees how good each
  trial looks, not only its rank, and a trial stopped early with a strong first report can outrank fully trained
  ones, which lets the GP find the basin it is in. ``min_correlation`` leaves out rungs as for ``"all"``.

A share ``random_fraction`` of new trials is drawn at random, which keeps the search global, as are the trials
started before the model has enough results: uniformly (``random_draws="uniform"``) or as the points of one
scrambled Sobol sequence at the trials' numbers (``"sobol"``), which cover the space more evenly, most of all the
first batch that parallel workers start before any result. With
``initial="centre"`` the first trial is the space's prior mode where a prior is given, else its centre (numeric
parameters at the middle of their range, log scale where declared; categoricals at their first choice, numeric
choices at the middle one). Define-by-run studies (no declared space) are modelled on the space their finished
trials share; until one finished, trials are drawn by the study's sampler. Promotions and stops are Hyperband's.
All draws are keyed by the seed and the number of trials, so decisions stay pure.
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
from lmtune.samplers.sobol import SobolSampler
from lmtune.schedulers.base import TrialStart
from lmtune.schedulers.forecast import kendall_tau
from lmtune.schedulers.hyperband import Hyperband
from lmtune.space import CategoricalDistribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["BOHB"]

# Model name -> (module, class), imported on first use: the model samplers are optional parts of the package.
MODELS = {
    "tpe": ("lmtune.samplers.tpe", "TPESampler"),
    "gp": ("lmtune.samplers.gp", "GPSampler"),
    "auto": ("lmtune.samplers.auto", "AutoSampler"),
}
MODEL_RUNGS = ("highest", "all", "calibrated")
#: Trials with reports at both rungs needed before their rank correlation is trusted to drop a rung.
MIN_PAIRS = 5
#: Trials with reports at a rung and at the reference rung needed to fit the line between them (fewer: a shift).
MIN_LINE = 3


INITIAL = ("random", "centre")
#: How the random share and the trials before the model are drawn -> the sampler that draws them.
RANDOM_DRAWS = {"uniform": RandomSampler, "sobol": SobolSampler}


def centre_point(space: SearchSpace) -> dict[str, Any]:
    """The prior mode of each parameter that has a prior, else the centre of its range (see the module
    docstring); parameters inactive under the chosen parents are left out."""
    point: dict[str, Any] = {}
    for name, dist in space.items():
        if not space.is_active(name, point):
            continue
        if dist.prior is not None:
            point[name] = dist.prior.value
        elif isinstance(dist, CategoricalDistribution):
            numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in dist.choices)
            point[name] = sorted(dist.choices)[(len(dist.choices) - 1) // 2] if numeric else dist.choices[0]
        else:
            point[name] = dist.from_unit(0.5)
    return point


def valued_history(
    history: TrialHistory, values: dict[int, float], direction: str, space: SearchSpace
) -> TrialHistory:
    """The history as a model sees it: trials with a value in ``values`` (by number) as COMPLETE with that value,
    the others as RUNNING (no evidence either way); failed trials left out."""
    records = tuple(
        r.replace(state=TrialState.COMPLETE, value=values[r.number])
        if r.number in values
        else r.replace(state=TrialState.RUNNING)
        for r in history
        if r.state is not TrialState.FAILED
    )
    return TrialHistory(records, direction, space)


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
        model_rungs: str = "highest",
        initial: str = "random",
        full_share: float = 0.0,
        min_correlation: float | None = None,
        rank_by: str = "value",
        first_pass: bool = True,
        random_draws: str = "uniform",
    ) -> None:
        super().__init__(
            max_resource,
            min_resource,
            reduction_factor,
            pause=pause,
            resource=resource,
            n_brackets=n_brackets,
            seed=seed,
            full_share=full_share,
            rank_by=rank_by,
            first_pass=first_pass,
        )
        if model_rungs not in MODEL_RUNGS:
            raise ConfigError(
                f"scheduler.model_rungs must be one of {list(MODEL_RUNGS)}, but got {model_rungs!r}"
            )
        if initial not in INITIAL:
            raise ConfigError(f"scheduler.initial must be one of {list(INITIAL)}, but got {initial!r}")
        if not isinstance(random_draws, str) or random_draws not in RANDOM_DRAWS:
            raise ConfigError(
                f"scheduler.random_draws must be one of {list(RANDOM_DRAWS)}, but got {random_draws!r}"
            )
        if not isinstance(model, str) or model not in MODELS:
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
        if min_correlation is not None and (
            isinstance(min_correlation, bool)
            or not isinstance(min_correlation, (int, float))
            or not -1 <= min_correlation <= 1
        ):
            raise ConfigError(
                f"scheduler.min_correlation must be a number in [-1, 1] or null, but got {min_correlation!r}"
            )
        self.min_correlation = None if min_correlation is None else float(min_correlation)
        self.model = model
        self.random_fraction = float(random_fraction)
        self.min_points_in_model = min_points_in_model
        self.model_rungs = model_rungs
        self.initial = initial
        self.random_draws = random_draws
        self._random = RANDOM_DRAWS[random_draws](seed=seed)
        self._sampler: Sampler | None = None

    def passes_first(self, trial: TrialRecord, history: TrialHistory) -> bool:
        """``first_pass``, and always for the centre trial (``initial="centre"``): the reference trained first."""
        return self.first_pass or self.is_centre(trial.number)

    def is_centre(self, number: int) -> bool:
        """Whether trial ``number`` is the one started at the prior mode or centre of the space."""
        return number == 0 and self.initial == "centre"

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
            # The rung history handed to the model always has enough points: no start-up phase of its own
            # (``auto`` chooses GP or TPE per suggestion and has none).
            options = {} if self.model == "auto" else {"n_startup_trials": 1}
            self._sampler = cls(seed=self.seed, **options)
        return self._sampler

    def next_trial(self, history: TrialHistory) -> TrialStart:
        start = super().next_trial(history)
        if start.resume_number is not None:
            return start
        space = history.space if history.space is not None else history.inferred_space()
        if len(space) == 0:
            return start
        return replace(start, params=self.propose(history, space))

    def propose(self, history: TrialHistory, space: SearchSpace) -> dict[str, Any]:
        """Parameters of the next new trial: the centre first (``initial="centre"``), then drawn at random
        (``random_draws``) until the model has enough results and for a ``random_fraction`` share, else from the
        model."""
        number = len(history)
        if self.is_centre(number):
            return centre_point(space)
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, number, 0xB0B])))
        fitted = self.model_history(history, space)
        if fitted is None or rng.random() < self.random_fraction:
            return self._random.suggest(space, history, number)
        return self.model_sampler().suggest(space, fitted, number)

    def model_history(self, history: TrialHistory, space: SearchSpace) -> TrialHistory | None:
        """The history as the model sees it (``model_rungs``); None while there are too few results."""
        return self.rungs_view(self.model_rungs, history, space)

    def rungs_view(
        self, model_rungs: str, history: TrialHistory, space: SearchSpace, needed: int | None = None
    ) -> TrialHistory | None:
        """The history seen through one of :data:`MODEL_RUNGS`; None while there are fewer results than ``needed``
        (default: :meth:`points_needed`)."""
        needed = needed or self.points_needed(space)
        if model_rungs == "all":
            return self.ladder_history(history, space, needed)
        if model_rungs == "calibrated":
            return self.calibrated_history(history, space, needed)
        return self.rung_history(history, space, needed)

    def points_needed(self, space: SearchSpace) -> int:
        """Results the model needs before it proposes: ``min_points_in_model``, else one more than the parameters."""
        return self.min_points_in_model or len(space) + 1

    def rung_history(self, history: TrialHistory, space: SearchSpace, needed: int) -> TrialHistory | None:
        """Each trial's value at the highest rung with at least ``needed`` results."""
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

    def ladder_history(self, history: TrialHistory, space: SearchSpace, needed: int) -> TrialHistory | None:
        """Every trial that reported at a rung, scored ``k + q`` (to maximise): ``k`` the index of the highest rung
        it reached, ``q`` in [0, 1) its rank among the reports at that rung (1 - (rank + 1) / n, best highest).
        Trials with no rung result yet are passed as RUNNING."""
        trusted = self.trusted_rungs(history)
        reached = self.highest_rungs(history, trusted)
        if len(reached) < needed:
            return None
        score: dict[int, float] = {}
        for k in trusted:
            level = self.levels[k]
            at_level = [r for r in history if reached.get(r.number, -1) >= k and level in r.intermediate]
            ranked = sorted(at_level, key=lambda r: (history.signed(r.intermediate[level]), r.number))
            for rank, record in enumerate(ranked):
                if reached[record.number] == k:
                    score[record.number] = k + 1 - (rank + 1) / len(ranked)
        return valued_history(history, score, "maximize", space)

    def calibrated_history(
        self, history: TrialHistory, space: SearchSpace, needed: int
    ) -> TrialHistory | None:
        """Every trial that reported at a trusted rung, valued on the scale of the reference rung (the highest with
        at least :data:`MIN_PAIRS` reports, else the first): its value at the highest trusted rung it reached, at
        most the reference, mapped by :meth:`rung_calibration`. Trials with no such report are passed as RUNNING."""
        live = [r for r in history if r.state is not TrialState.FAILED]
        reference = self.reference_rung(live)
        highest = self.highest_rungs(history, [k for k in self.trusted_rungs(history) if k <= reference])
        if len(highest) < needed:
            return None
        lines = {k: self.rung_calibration(live, k, reference, history) for k in set(highest.values())}
        values = {}
        for record in live:
            if record.number in highest:
                k = highest[record.number]
                shift, slope = lines[k]
                values[record.number] = shift + slope * history.signed(record.intermediate[self.levels[k]])
        return valued_history(history, values, "minimize", space)

    def rung_calibration(
        self, live: list[TrialRecord], rung: int, reference: int, history: TrialHistory
    ) -> tuple[float, float]:
        """``(a, b)`` mapping a signed value at ``rung`` to the reference rung's scale, ``a + b * value``: the
        least-squares line through the trials with both reports when there are at least :data:`MIN_LINE` and it
        rises, else the mean difference between them as a shift, else the value itself."""
        if rung == reference:
            return 0.0, 1.0
        low, high = self.levels[rung], self.levels[reference]
        pairs = np.array(
            [
                (history.signed(r.intermediate[low]), history.signed(r.intermediate[high]))
                for r in live
                if low in r.intermediate and high in r.intermediate
            ]
        ).reshape(-1, 2)
        if len(pairs) >= MIN_LINE and np.ptp(pairs[:, 0]) > 0:
            slope, shift = np.polyfit(pairs[:, 0], pairs[:, 1], 1)
            if slope > 0:
                return float(shift), float(slope)
        if len(pairs):
            return float(np.mean(pairs[:, 1] - pairs[:, 0])), 1.0
        return 0.0, 1.0

    def highest_rungs(self, history: TrialHistory, rungs: list[int]) -> dict[int, int]:
        """Trial number -> index of the highest of ``rungs`` it reported at (failed trials and trials with no such
        report left out)."""
        highest: dict[int, int] = {}
        for record in history:
            reached = [k for k in rungs if self.levels[k] in record.intermediate]
            if record.state is not TrialState.FAILED and reached:
                highest[record.number] = reached[-1]
        return highest

    def reference_rung(self, live: list[TrialRecord]) -> int:
        """The highest rung with at least :data:`MIN_PAIRS` reports (0 when none has)."""
        counts = [sum(level in r.intermediate for r in live) for level in self.levels]
        return max((k for k, count in enumerate(counts) if count >= MIN_PAIRS), default=0)

    def trusted_rungs(self, history: TrialHistory) -> list[int]:
        """Indices of the rungs the ladder ranks by: with ``min_correlation`` set, a rung below the reference (the
        highest rung with at least :data:`MIN_PAIRS` reports) is left out when the Kendall rank correlation of
        the trials' values there and at the reference is below it (measured on at least :data:`MIN_PAIRS` trials
        that have both; fewer: kept). Misleading low fidelities then stop steering the model (Hyper-Tune weighs
        its rungs by the same kind of agreement)."""
        every = list(range(len(self.levels)))
        if self.min_correlation is None:
            return every
        live = [r for r in history if r.state is not TrialState.FAILED]
        reference = self.reference_rung(live)
        trusted = []
        for k in every:
            pairs = [
                (r.intermediate[self.levels[k]], r.intermediate[self.levels[reference]])
                for r in live
                if self.levels[k] in r.intermediate and self.levels[reference] in r.intermediate
            ]
            if (
                k >= reference
                or len(pairs) < MIN_PAIRS
                or kendall_tau(*np.asarray(pairs).T) >= self.min_correlation
            ):
                trusted.append(k)
        return trusted

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "min_correlation": self.min_correlation,
            "model": self.model,
            "random_fraction": self.random_fraction,
            "random_draws": self.random_draws,
            "min_points_in_model": self.min_points_in_model,
            "model_rungs": self.model_rungs,
            "initial": self.initial,
        }
