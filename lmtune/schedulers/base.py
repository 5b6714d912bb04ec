"""The scheduler contract: *when* a trial continues, stops or pauses (the sampler decides *what* to try).

A scheduler is a pure function of the trial records and its own settings, so any worker can take a decision and a
restarted study decides the same way. It never writes to storage: the study carries out what it answers.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from lmtune.history import TrialHistory
from lmtune.trial import BRACKET, BUDGET, INHERIT_CHECKPOINT_OF, Lineage, TrialRecord

__all__ = ["Action", "Decision", "NoScheduler", "Scheduler", "TrialStart"]


class Action(str, enum.Enum):
    CONTINUE = "CONTINUE"
    STOP = "STOP"
    PAUSE = "PAUSE"


@dataclass(frozen=True)
class Decision:
    """The answer to one report: go on, stop (the trial is PRUNED) or pause (it may be promoted later)."""

    action: Action = Action.CONTINUE
    reason: str = ""

    @property
    def stops(self) -> bool:
        return self.action is Action.STOP

    @property
    def pauses(self) -> bool:
        return self.action is Action.PAUSE


CONTINUE = Decision()


@dataclass(frozen=True)
class TrialStart:
    """What the next trial should be: a new one run to ``budget``, or the PAUSED trial ``resume_number``
    promoted to ``budget``. ``budget`` is in the scheduler's resource unit (e.g. epochs); None means no limit.
    A new trial may come with ``params``, the Hyperband ``bracket`` it joins, and (population-based training) its
    ``lineage`` and the trial whose checkpoint it copies first (``inherit_checkpoint_of``); the study stores these
    with the trial, where :class:`~lmtune.trial.TrialRecord` reads them back."""

    budget: int | None = None
    resume_number: int | None = None
    params: dict[str, Any] | None = None
    bracket: int | None = None
    lineage: Lineage | None = None
    inherit_checkpoint_of: int | None = None

    def system_attrs(self) -> dict[str, Any]:
        """The new trial's life-cycle fields as storage keeps them."""
        attrs: dict[str, Any] = self.lineage.to_attrs() if self.lineage is not None else {}
        for key, value in (
            (BUDGET, self.budget),
            (BRACKET, self.bracket),
            (INHERIT_CHECKPOINT_OF, self.inherit_checkpoint_of),
        ):
            if value is not None:
                attrs[key] = value
        return attrs


class Scheduler(ABC):
    """Base class of schedulers. Subclasses implement :meth:`on_report`; budget-based ones also
    :meth:`next_trial`."""

    #: Whether the scheduler makes new trials start from the checkpoint of a trial that may still be running
    #: (population-based training), so running trials must keep a resumable checkpoint at every report.
    copies_checkpoints: bool = False

    @abstractmethod
    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        """Decide after ``trial`` reported (its newest value is ``trial.last_intermediate``)."""

    def next_trial(self, history: TrialHistory) -> TrialStart:
        """Decide what the next asked trial is: by default a new trial without a budget."""
        return TrialStart()

    def describe(self) -> dict[str, Any]:
        return {"name": type(self).__name__}


class NoScheduler(Scheduler):
    """Never stops a trial: every trial runs to the end the objective chooses."""

    def on_report(self, trial: TrialRecord, history: TrialHistory) -> Decision:
        return CONTINUE
