"""Trial states, the immutable trial record, and the live handle an objective receives.

:class:`TrialRecord` is history: frozen, JSON-able, what storage returns and algorithms read.
:class:`Trial` is the running trial: it suggests parameters, reports intermediate values and tells the objective
when to stop. Both the handle and the record are produced by a :class:`~lmtune.study.Study`; the handle writes
through the study's storage, never to algorithm state.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError, TrialPruned
from lmtune.space import (
    CategoricalDistribution,
    Distribution,
    FloatDistribution,
    IntDistribution,
    distribution_from_dict,
)

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["Lineage", "Trial", "TrialRecord", "TrialState"]


class TrialState(str, enum.Enum):
    """Life cycle: WAITING -> RUNNING -> (PAUSED -> RUNNING)* -> COMPLETE | PRUNED | FAILED."""

    WAITING = "WAITING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAILED = "FAILED"

    def is_finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)

    def __str__(self) -> str:
        return self.value


# Legal transitions; storage backends enforce them.
ALLOWED_TRANSITIONS: dict[TrialState, frozenset[TrialState]] = {
    TrialState.WAITING: frozenset({TrialState.RUNNING, TrialState.FAILED}),
    TrialState.RUNNING: frozenset(
        {TrialState.PAUSED, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED}
    ),
    TrialState.PAUSED: frozenset(
        {TrialState.RUNNING, TrialState.PRUNED, TrialState.FAILED, TrialState.COMPLETE}
    ),
    TrialState.COMPLETE: frozenset(),
    TrialState.PRUNED: frozenset(),
    TrialState.FAILED: frozenset(),
}


# The keys under which the life-cycle fields below are stored in a trial's system attributes (JSON). Code reads and
# writes them through the typed fields of :class:`TrialRecord` and :class:`lmtune.schedulers.TrialStart`.
BUDGET = "budget"
RESUME_FROM = "resume_from"
CHECKPOINT_DIR = "checkpoint_dir"
CHECKPOINT_DELETED = "checkpoint_deleted"
BRACKET = "bracket"
RETRY_OF = "retry_of"
RETRY_COUNT = "retry_count"
PROCESS = "process"
INHERIT_CHECKPOINT_OF = "inherit_checkpoint_of"
PBT_KEYS = {
    "parent": "pbt_parent",
    "replaces": "pbt_replaces",
    "step": "pbt_step",
    "generation": "pbt_generation",
}


@dataclass(frozen=True)
class Lineage:
    """Where a population-based-training trial comes from: the ``parent`` whose checkpoint it continues after
    ``step``, the stopped trial it ``replaces``, and its ``generation`` (0 for the first population)."""

    generation: int = 0
    parent: int | None = None
    replaces: int | None = None
    step: int | None = None

    def to_attrs(self) -> dict[str, Any]:
        return {PBT_KEYS[k]: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> Lineage | None:
        found = {k: int(attrs[key]) for k, key in PBT_KEYS.items() if attrs.get(key) is not None}
        return cls(**found) if found else None


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored: immutable; every field is JSON-able except the distributions.

    Times are seconds since the epoch. ``intermediate`` maps a step (epoch, batch, ...) to the reported value.
    ``distributions`` holds the distribution each parameter was drawn from, so a define-by-run study's space can be
    rebuilt from its history. ``seq`` is the study-wide change counter of the last write to this trial.
    """

    trial_id: int
    number: int
    state: TrialState
    params: Mapping[str, Any] = field(default_factory=dict)
    distributions: Mapping[str, Distribution] = field(default_factory=dict)
    value: float | None = None
    intermediate: Mapping[int, float] = field(default_factory=dict)
    user_attrs: Mapping[str, Any] = field(default_factory=dict)
    system_attrs: Mapping[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    worker_id: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    seq: int = 0

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate) if self.intermediate else None

    @property
    def last_intermediate(self) -> float | None:
        step = self.last_step
        return None if step is None else self.intermediate[step]

    @property
    def duration(self) -> float | None:
        """Wall time in seconds from start to finish, when both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    # Life-cycle fields, stored in the system attributes --------------------------------------------------------
    @property
    def checkpoint_dir(self) -> str | None:
        """The trial's checkpoint folder, once it asked for one."""
        return self.system_attrs.get(CHECKPOINT_DIR)

    @property
    def checkpoint_deleted(self) -> bool:
        """True when the checkpoint budget deleted the trial's checkpoint folder."""
        return bool(self.system_attrs.get(CHECKPOINT_DELETED))

    @property
    def budget(self) -> int | None:
        """The resource (e.g. epochs) the scheduler lets the trial run to; None: no limit."""
        budget = self.system_attrs.get(BUDGET)
        return None if budget is None else int(budget)

    @property
    def resume_from(self) -> str | None:
        """A checkpoint folder to load before training: a promoted, retried or PBT trial's."""
        return self.system_attrs.get(RESUME_FROM)

    @property
    def bracket(self) -> int:
        """The successive-halving ladder (Hyperband bracket) the trial runs in; 0 outside Hyperband."""
        return int(self.system_attrs.get(BRACKET, 0))

    @property
    def retry_of(self) -> int | None:
        """The number of the lost trial this one re-runs."""
        number = self.system_attrs.get(RETRY_OF)
        return None if number is None else int(number)

    @property
    def retry_count(self) -> int:
        """How many retries of lost trials led to this one (0 for a first run)."""
        return int(self.system_attrs.get(RETRY_COUNT, 0))

    @property
    def inherit_checkpoint_of(self) -> int | None:
        """The trial whose checkpoint a new PBT trial copies before it starts."""
        number = self.system_attrs.get(INHERIT_CHECKPOINT_OF)
        return None if number is None else int(number)

    @property
    def lineage(self) -> Lineage | None:
        """Population-based training's record of where the trial comes from."""
        return Lineage.from_attrs(self.system_attrs)

    @property
    def process(self) -> Mapping[str, Any] | None:
        """``{"host", "pid"}`` of the process that runs the trial, set when it begins (executors' trials)."""
        return self.system_attrs.get(PROCESS)

    def replace(self, **changes: Any) -> TrialRecord:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form used by exports and the dashboard."""
        return {
            "number": self.number,
            "state": self.state.value,
            "value": self.value,
            "params": dict(self.params),
            "distributions": {k: d.to_dict() for k, d in self.distributions.items()},
            "intermediate": {str(k): v for k, v in sorted(self.intermediate.items())},
            "user_attrs": dict(self.user_attrs),
            "system_attrs": dict(self.system_attrs),
            "failure_reason": self.failure_reason,
            "worker_id": self.worker_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], trial_id: int = -1) -> TrialRecord:
        return cls(
            trial_id=trial_id,
            number=int(d["number"]),
            state=TrialState(d["state"]),
            params=dict(d.get("params") or {}),
            distributions={k: distribution_from_dict(v) for k, v in (d.get("distributions") or {}).items()},
            value=d.get("value"),
            intermediate={int(k): float(v) for k, v in (d.get("intermediate") or {}).items()},
            user_attrs=dict(d.get("user_attrs") or {}),
            system_attrs=dict(d.get("system_attrs") or {}),
            failure_reason=d.get("failure_reason"),
            worker_id=d.get("worker_id"),
            started_at=d.get("started_at"),
            finished_at=d.get("finished_at"),
        )


def check_value(value: Any) -> tuple[float | None, str | None]:
    """Turn an objective's return into ``(value, None)`` or ``(None, reason)`` when it is unusable."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            import numpy as np

            if isinstance(value, np.generic) and np.issubdtype(type(value), np.number):
                value = float(value)
            else:
                raise TypeError
        except TypeError:
            return None, f"the objective returned {value!r} ({type(value).__name__}), not a number"
    value = float(value)
    if not math.isfinite(value):
        return None, f"the objective returned {value!r}, which is not a finite number"
    return value, None


class Trial:
    """The live handle of a running trial, given to the objective.

    Declarative objectives read :attr:`params`; define-by-run objectives call ``suggest_*`` (Optuna's signatures).
    ``report(value, step)`` records an intermediate value and asks the scheduler whether to go on;
    :meth:`should_stop` says when to return early.
    """

    def __init__(
        self, study: Study, record: TrialRecord, presuggested: Mapping[str, Any] | None = None
    ) -> None:
        self._study = study
        self._record = record
        self._params: dict[str, Any] = dict(record.params)
        self._distributions: dict[str, Distribution] = dict(record.distributions)
        self._presuggested = dict(presuggested or {})
        self._stop_requested = False
        self._pause_requested = False
        self._budget = record.budget

    # Identity -------------------------------------------------------------------------------------------------
    @property
    def number(self) -> int:
        """The trial's number in its study, from 0."""
        return self._record.number

    @property
    def trial_id(self) -> int:
        return self._record.trial_id

    @property
    def study(self) -> Study:
        return self._study

    @property
    def params(self) -> dict[str, Any]:
        """The parameters chosen so far (all of them for a declared space)."""
        return dict(self._params)

    @property
    def distributions(self) -> dict[str, Distribution]:
        return dict(self._distributions)

    @property
    def budget(self) -> int | None:
        """The resource (e.g. epochs) the scheduler lets this trial run to, or None for no limit."""
        return self._budget

    @property
    def resume_from(self) -> str | None:
        """A checkpoint folder to load before training, set when a paused trial is promoted, a lost one retried, or
        a PBT trial inherits its parent's."""
        return self._record.resume_from

    @property
    def checkpoint_dir(self) -> Path:
        """This trial's own folder for checkpoints, created on first use and recorded in the trial."""
        return self._study.checkpoint_dir_of(self._record)

    @property
    def presuggested(self) -> dict[str, Any]:
        """The sampler's joint suggestion for a define-by-run trial, which the process running it must reuse."""
        return dict(self._presuggested)

    # Define-by-run ----------------------------------------------------------------------------------------------
    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        """Suggest a float in ``[low, high]``; ``log`` samples on a log scale, ``step`` discretises."""
        return self._suggest(name, FloatDistribution(low, high, step=step, log=log))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        """Suggest an integer in ``[low, high]`` with ``step``; ``log`` samples on a log scale."""
        return self._suggest(name, IntDistribution(low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """Suggest one of ``choices`` (JSON values)."""
        return self._suggest(name, CategoricalDistribution(list(choices)))

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high, log=True)

    def _suggest(self, name: str, dist: Distribution) -> Any:
        if name in self._params:
            known = self._distributions.get(name)
            if known is not None and not _compatible(known, dist):
                raise ConfigError(
                    f"trial {self.number}: parameter {name!r} was suggested from {known.describe()} "
                    f"and again from {dist.describe()}"
                )
            return self._params[name]
        value = self._draw(name, dist)
        self._params[name] = value
        self._distributions[name] = dist
        self._study.storage.set_trial_param(self.trial_id, name, value, dist)
        return value

    def _draw(self, name: str, dist: Distribution) -> Any:
        """A value for a parameter not chosen yet: the sampler's joint suggestion where it fits, else its own."""
        if name in self._presuggested and dist.contains(self._presuggested[name]):
            return dist.cast(self._presuggested[name])
        return self._study.sampler.suggest_one(name, dist, self._study.history(), self.number, self._params)

    # Reporting --------------------------------------------------------------------------------------------------
    def report(self, value: float, step: int) -> None:
        """Record an intermediate ``value`` at ``step`` (epochs, steps, ...) and let the scheduler decide."""
        checked, reason = check_value(value)
        if checked is None:
            raise ConfigError(f"trial {self.number}: report() needs a finite number: {reason}")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(
                f"trial {self.number}: report() step must be a non-negative integer, got {step!r}"
            )
        decision = self._study.decide(self.trial_id, checked, step)
        self._stop_requested = decision.stops
        self._pause_requested = decision.pauses

    def should_stop(self) -> bool:
        """True when the scheduler asked this trial to stop (pruned) or pause after its last report."""
        return self._stop_requested or self._pause_requested

    def should_prune(self) -> bool:
        """Optuna's name for :meth:`should_stop`."""
        return self.should_stop()

    def prune(self) -> None:
        """Stop the trial now as PRUNED (raises :class:`TrialPruned`)."""
        raise TrialPruned(f"trial {self.number} pruned")

    @property
    def pause_requested(self) -> bool:
        return self._pause_requested

    # Attributes ---------------------------------------------------------------------------------------------------
    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-able value with the trial."""
        self._study.storage.set_trial_user_attr(self.trial_id, key, value)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._study.storage.get_trial(self.trial_id).user_attrs)

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self._params!r})"


def _compatible(a: Distribution, b: Distribution) -> bool:
    return a == b
