"""Asynchronous successive halving (ASHA, Li et al. 2020): promote when a rung has room, never wait.

Resources (epochs, by default) are spent on rungs ``min_resource * reduction_factor**k``, capped by
``max_resource`` (which is always the last rung): with 1, 5 and 3 the rungs are 1, 3 and 5 epochs. Of the trials
that reached a rung, the best ``1 / reduction_factor`` may go on to the next one.

Two forms, both pure functions of the trial records:

* **stop** (default): every trial is started to ``max_resource``; when it reports at a rung it continues only if it
  is among the best ``floor(n / eta)`` of the ``n`` trials that reported at that rung so far (the first one always
  continues; with ``first_pass=False`` it must rank in the best ``floor(n / eta)`` at the first rung of its
  ladder, so no trial goes on from there for being the best of fewer than ``eta`` reports), otherwise it is stopped
  (PRUNED).
* **pause** (``pause=True``): a new trial runs to the lowest rung and PAUSES there; :meth:`next_trial` resumes the
  best paused trial of the highest rung that has room (it is in the top ``floor(n / eta)`` of its rung and not
  promoted yet), and starts a new trial only when no promotion is possible.

**Budget-aware top rung** (stop form, ``full_share`` > 0): a trial outside the top ``1/eta`` of its rung still goes
on when it ranks in the top half there and the trials sent past the last rung below ``max_resource`` so far hold
less than ``full_share`` of the resource spent. Plain ASHA sends about ``1/eta**2`` of
its trials to the end, so on a short study the final choice rests on a handful of fully trained candidates; this
keeps a share of the budget on fully trained ones without letting bad trials through.

**Ranking by forecast** (``rank_by="forecast"``): above a ladder's first rung, trials are ranked by a forecast of
their final value learned from the trials that finished (:mod:`lmtune.schedulers.forecast`) instead of by their
value at the rung, while that forecast ranks the finished trials better than their rung values do.

:class:`~lmtune.schedulers.hyperband.Hyperband` runs several such ladders (brackets) that start at different rungs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmtune.exceptions import ConfigError
from lmtune.history import TrialHistory
from lmtune.schedulers.base import CONTINUE, Action, Decision, Scheduler, TrialStart
from lmtune.schedulers.forecast import final_forecasts
from lmtune.trial import TrialRecord, TrialState

__all__ = ["RANK_BY", "SuccessiveHalving", "rung_levels"]

#: How a rung ranks its trials: by their value there, or by the forecast of their final value.
RANK_BY = ("value", "forecast")


def rung_levels(min_resource: int, max_resource: int, reduction_factor: int) -> list[int]:
    """The resource levels of the rungs: ``min * eta**k`` below ``max``, then ``max`` itself."""
    levels: list[int] = []
    level = float(min_resource)
    while round(level) < max_resource:
        if not levels or round(level) > levels[-1]:
            levels.append(round(level))
        level *= reduction_factor
    levels.append(max_resource)
    return levels


def check_resources(min_resource: Any, max_resource: Any, reduction_factor: Any) -> None:
    """Raise :class:`ConfigError` naming the field when the rung settings are unusable."""
    for name, value in (("min_resource", min_resource), ("max_resource", max_resource)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"scheduler.{name} must be a positive integer (resource units), but got {value!r}"
            )
    if min_resource > max_resource:
        raise ConfigError(
            f"scheduler.min_resource must be <= max_resource, but got min_resource={min_resource}, "
            f"max_resource={max_resource}"
        )
    if (
        isinstance(reduction_factor, bool)
        or not isinstance(reduction_factor, (int, float))
        or reduction_factor < 2
    ):
        raise ConfigError(
            f"scheduler.reduction_factor must be a number >= 2 (3 is usual), but got {reduction_factor!r}"
        )


def rung_value(record: TrialRecord, level: int) -> float | None:
    """The value a trial reported at exactly step ``level`` (None when it did not report there)."""
    return record.intermediate.get(level)


def rung_key(
    level: int, history: TrialHistory, forecasts: Mapping[int, float] | None = None
) -> Callable[[TrialRecord], tuple[float, int]]:
    """How trials at rung ``level`` are ranked (lower first): by their signed value there, or by ``forecasts`` of
    their final value (signed, keyed by trial number) where given; ties go to the lower trial number."""
    if forecasts is not None:
        return lambda r: (forecasts[r.number], r.number)
    return lambda r: (history.signed(r.intermediate[level]), r.number)


def top_of_rung(
    records: Sequence[TrialRecord],
    level: int,
    eta: float,
    history: TrialHistory,
    forecasts: Mapping[int, float] | None = None,
) -> list[TrialRecord]:
    """The trials among ``records`` that are in the best ``floor(n / eta)`` at rung ``level`` (ranked by
    :func:`rung_key`)."""
    at_rung = [r for r in records if r.state is not TrialState.FAILED and rung_value(r, level) is not None]
    ranked = sorted(at_rung, key=rung_key(level, history, forecasts))
    return ranked[: int(len(ranked) // eta)]


def stays_in_rung(
    trial: TrialRecord,
    records: Sequence[TrialRecord],
    level: int,
    eta: float,
    history: TrialHistory,
    forecasts: Mapping[int, float] | None = None,
    first_pass: bool = True,
) -> bool:
    """Stop-form rule: whether ``trial`` ranks in the best ``max(1, floor(n / eta))`` of the ``n`` reports at
    rung ``level`` (itself included; ranked by :func:`rung_key`). Without ``first_pass`` it must rank in the best
    ``floor(n / eta)``: a trial reporting before the rung holds ``eta`` reports does not go on for being the best
    of too few."""
    if rung_value(trial, level) is None:
        return True
    at_rung = [r for r in records if r.state is not TrialState.FAILED and rung_value(r, level) is not None]
    if all(r.number != trial.number for r in at_rung):
        at_rung.append(trial)
    key = rung_key(level, history, forecasts)
    mine = key(trial)
    rank = sum(key(r) < mine for r in at_rung)
    room = int(len(at_rung) // eta)
    return rank < (max(1, room) if first_pass else room)


class SuccessiveHalving(Scheduler):
    """ASHA with one ladder of rungs; see the module docstring for the stop and pause forms.

    ``min_resource``/``max_resource`` are in the units of the objective's report steps (``resource``, e.g.
    ``"epoch"``); ``reduction_factor`` (eta) is the fraction kept at each rung, 1/eta.
    """

    def __init__(
        self,
        max_resource: int,
        min_resource: int = 1,
        reduction_factor: float = 3,
        *,
        pause: bool = False,
        resource: str = "epoch",
        full_share: float = 0.0,
        rank_by: str = "value",
        first_pass: bool = True,
    ) -> None:
        check_resources(min_resource, max_resource, reduction_factor)
        if not isinstance(first_pass, bool):
            raise ConfigError(f"scheduler.first_pass must be true or false, but got {first_pass!r}")
        self.first_pass = first_pass
        if rank_by not in RANK_BY:
            raise ConfigError(f"scheduler.rank_by must be one of {list(RANK_BY)}, but got {rank_by!r}")
        self.rank_by = rank_by
        if (
            isinstance(full_share, bool)
            or not isinstance(full_share, (int, float))
            or not 0 <= full_share < 1
        ):
            raise ConfigError(f"scheduler.full_share must be a number in [0, 1), but got {full_share!r}")
        self.full_share = float(full_share)
        self.min_resource = min_resource
        self.max_resource = max_resource
        self.reduction_factor = reduction_factor
        self.pause = bool(pause)
        self.resource = resource
        self.levels = rung_levels(min_resource, max_resource, int(reduction_factor))

    # Brackets: plain ASHA has one, Hyperband overrides these two ------------------------------------------------
    def bracket_of(self, record: TrialRecord) -> int:
        """The index of the first rung of the trial's ladder."""
        return record.bracket

    def new_bracket(self, history: TrialHistory) -> int:
        """The ladder a new trial joins."""
        return 0

    # Decisions --------------------------------------------------------------------------------------------------
    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        step = trial.last_step
        if step is None or step >= self.max_resource:
            return CONTINUE
        bracket = self.bracket_of(trial)
        if self.pause:
            budget = trial.budget
            if budget is not None and step >= budget:
                return Decision(Action.PAUSE, f"reached rung {budget} {self.resource}s")
            return CONTINUE
        if step not in self.levels[bracket:-1]:
            return CONTINUE
        # The trial's own record as reported now (the history may not hold this report yet).
        peers = [r for r in history if self.bracket_of(r) == bracket and r.number != trial.number] + [trial]
        forecasts = self.forecasts(peers, step, bracket, history)
        # Higher rungs keep the first pass: the trials there earned their place at the rung below.
        passes = step != self.levels[bracket] or self.passes_first(trial, history)
        if stays_in_rung(trial, peers, step, self.reduction_factor, history, forecasts, passes):
            return CONTINUE
        if self._needs_full_trainings(history) and stays_in_rung(
            trial, peers, step, 2, history, forecasts, passes
        ):
            return Decision(
                reason=f"top half at rung {step} {self.resource}s, kept to have fully trained candidates"
            )
        return Decision(
            Action.STOP, f"not in the top 1/{self.reduction_factor} at rung {step} {self.resource}s"
        )

    def passes_first(self, trial: TrialRecord, history: TrialHistory) -> bool:
        """Whether ``trial`` goes on from the first rung of its ladder while it holds fewer than
        ``reduction_factor`` reports when it is the best there so far (``first_pass``; ASHA's rule: the first trials
        to report continue)."""
        return self.first_pass

    def forecasts(
        self, peers: Sequence[TrialRecord], level: int, bracket: int, history: TrialHistory
    ) -> dict[int, float] | None:
        """With ``rank_by="forecast"``: the forecast final value of the trials at rung ``level`` of ``bracket``
        (see :mod:`lmtune.schedulers.forecast`); None to rank by value (the bracket's first rung has no rung below
        to measure a gain from)."""
        if self.rank_by != "forecast":
            return None
        rung = self.levels.index(level)
        if rung <= bracket:
            return None
        return final_forecasts(peers, level, self.levels[rung - 1], self.max_resource, history)

    def top_rung_share(self, history: TrialHistory) -> float:
        """The share of the resource kept on fully trained candidates now (``full_share``)."""
        return self.full_share

    def _needs_full_trainings(self, history: TrialHistory) -> bool:
        """Whether trials sent past the last rung below ``max_resource`` hold less than :meth:`top_rung_share` of
        the resource spent so far (each counted at ``max_resource``; steps are taken as resource units)."""
        share = self.top_rung_share(history)
        if share <= 0:
            return False
        last = self.levels[-2]
        spent = sum(r.last_step or 0 for r in history if r.state is not TrialState.FAILED)
        full = sum(self.max_resource for r in history if (r.last_step or 0) > last)
        return full < share * spent

    def next_trial(self, history: TrialHistory) -> TrialStart:
        if self.pause:
            promotion = self._promotion(history)
            if promotion is not None:
                return promotion
        bracket = self.new_bracket(history)
        budget = self.levels[bracket] if self.pause else self.max_resource
        return TrialStart(budget=budget, bracket=bracket)

    def _promotion(self, history: TrialHistory) -> TrialStart | None:
        """The best paused trial of the highest rung that has room, resumed to the next rung."""
        brackets = sorted({self.bracket_of(r) for r in history})
        for rung in range(len(self.levels) - 2, -1, -1):
            level = self.levels[rung]
            for bracket in brackets:
                if rung < bracket:
                    continue
                peers = [r for r in history if self.bracket_of(r) == bracket]
                forecasts = self.forecasts(peers, level, bracket, history)
                for record in top_of_rung(peers, level, self.reduction_factor, history, forecasts):
                    if record.state is TrialState.PAUSED and record.last_step == level:
                        return TrialStart(budget=self.levels[rung + 1], resume_number=record.number)
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "name": type(self).__name__,
            "resource": self.resource,
            "min_resource": self.min_resource,
            "max_resource": self.max_resource,
            "reduction_factor": self.reduction_factor,
            "pause": self.pause,
            "full_share": self.full_share,
            "rank_by": self.rank_by,
            "first_pass": self.first_pass,
            "rungs": self.levels,
        }
