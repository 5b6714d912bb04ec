"""Past trials as arrays in the unit-cube encoding, kept incrementally so a suggestion costs nearly the same at
2,000 trials as at 20.

Each record is encoded once and re-encoded only when the history holds another record object for its number (a
study's snapshots share the objects of unchanged trials), e.g. after a RUNNING trial completes. The cache is a pure
function of the records, so it never changes what a sampler suggests.
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
from dataclasses import dataclass

import numpy as np

from lmtune.history import TrialHistory
from lmtune.space import CategoricalDistribution, FloatDistribution, IntDistribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["DimensionKinds", "ObservationCache", "Observations", "dimension_kinds"]

_SKIP, _COMPLETE, _PENDING, _PRUNED = 0, 1, 2, 3
_PENDING_STATES = (TrialState.RUNNING, TrialState.PAUSED, TrialState.WAITING)
_number = operator.attrgetter("number")


@dataclass(frozen=True)
class DimensionKinds:
    """Per dimension of a space: whether it is categorical, and its number of unit-cube bins.

    ``bins`` is 0 for continuous dimensions (floats, log-scaled ints) and the number of values for categoricals,
    stepped floats and linear ints, whose unit encodings are bin centres.
    """

    categorical: np.ndarray
    bins: np.ndarray


@dataclass(frozen=True)
class Observations:
    """Encoded trials of one space; rows in trial-number order, NaN where a parameter was inactive.

    ``loss`` is the signed value of COMPLETE trials (lower is better). ``pending`` holds RUNNING, PAUSED and WAITING
    trials whose parameters are known (for the constant liar), ``pruned`` the PRUNED ones.
    """

    x: np.ndarray
    loss: np.ndarray
    numbers: np.ndarray
    pending: np.ndarray
    pruned: np.ndarray
    kinds: DimensionKinds

    @property
    def n(self) -> int:
        return len(self.loss)


def dimension_kinds(space: SearchSpace) -> DimensionKinds:
    categorical, bins = [], []
    for name in space:
        dist = space[name]
        is_cat = isinstance(dist, CategoricalDistribution)
        discrete = is_cat or (
            isinstance(dist, (IntDistribution, FloatDistribution))
            and not dist.log
            and not math.isinf(dist.n_values)
        )
        categorical.append(is_cat)
        bins.append(int(dist.n_values) if discrete else 0)
    return DimensionKinds(np.array(categorical, dtype=bool), np.array(bins, dtype=int))


def _encode(space: SearchSpace, names: list[str], record: TrialRecord) -> np.ndarray | None:
    """The unit-cube row of a record, or None when it lacks an active parameter or holds an illegal value."""
    params = record.params
    row = np.full(len(names), np.nan)
    for j, name in enumerate(names):
        if name in params:
            dist = space[name]
            if not dist.contains(params[name]):
                return None
            if space.is_active(name, params):
                row[j] = dist.to_unit(params[name])
        elif space.is_active(name, params):
            return None
    return row


class _SpaceRows:
    """Encoded rows of one space, indexed by trial number."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.names = list(space)
        self.kinds = dimension_kinds(space)
        self.rows = np.zeros((64, len(self.names)))
        self.loss = np.zeros(64)
        self.kind = np.full(64, _SKIP)
        self.seen: list[TrialRecord | None] = []

    def _grow(self, number: int) -> None:
        if number >= len(self.seen):
            self.seen.extend([None] * (number + 1 - len(self.seen)))
        if number >= len(self.loss):
            size = max(number + 1, 2 * len(self.loss))
            rows = np.zeros((size, len(self.names)))
            rows[: len(self.rows)] = self.rows
            loss = np.zeros(size)
            loss[: len(self.loss)] = self.loss
            kind = np.full(size, _SKIP)
            kind[: len(self.kind)] = self.kind
            self.rows, self.loss, self.kind = rows, loss, kind

    def update(self, record: TrialRecord, history: TrialHistory) -> None:
        number = record.number
        if number < len(self.seen) and self.seen[number] is record:
            return
        self._grow(number)
        self.seen[number] = record
        state = record.state
        kind = _SKIP
        if state is TrialState.COMPLETE and record.value is not None:
            kind = _COMPLETE
            self.loss[number] = history.signed(record.value)
        elif state in _PENDING_STATES:
            kind = _PENDING
        elif state is TrialState.PRUNED:
            kind = _PRUNED
        if kind != _SKIP:
            row = _encode(self.space, self.names, record)
            if row is None:
                kind = _SKIP
            else:
                self.rows[number] = row
        self.kind[number] = kind


class ObservationCache:
    """Encodes a history for a space, remembering earlier encodings (thread-safe)."""

    def __init__(self, max_spaces: int = 8) -> None:
        self._spaces: dict[str, _SpaceRows] = {}
        self._by_identity: dict[int, tuple[SearchSpace, _SpaceRows]] = {}
        self._max_spaces = max_spaces
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[ObservationCache], tuple[int]]:
        # Sent to a trial process (with its sampler) empty: the lock cannot be pickled, and encodings are rebuilt.
        return (ObservationCache, (self._max_spaces,))

    def _rows_of(self, space: SearchSpace) -> _SpaceRows:
        known = self._by_identity.get(id(space))
        if known is not None and known[0] is space:
            return known[1]
        key = space.to_json()
        rows = self._spaces.get(key)
        if rows is None:
            if len(self._spaces) >= self._max_spaces:
                self._spaces.pop(next(iter(self._spaces)))
                self._by_identity.clear()
            rows = self._spaces[key] = _SpaceRows(space)
        if len(self._by_identity) > 64:
            self._by_identity.clear()
        self._by_identity[id(space)] = (space, rows)
        return rows

    def collect(self, space: SearchSpace, history: TrialHistory, exclude: int | None = None) -> Observations:
        """The encoded trials of ``history`` in ``space``, leaving out trial ``exclude`` (the one being asked)."""
        with self._lock:
            rows = self._rows_of(space)
            records = history.records
            numbers = np.fromiter(map(_number, records), dtype=int, count=len(records))
            if len(records) and numbers[-1] == len(records) - 1:
                # Trial numbers 0..n-1 (sorted and unique): compare with the cached records at C speed.
                known = len(rows.seen)
                changed = [
                    *itertools.compress(records, map(operator.is_not, records, rows.seen)),
                    *records[known:],
                ]
            else:
                changed = list(records)
            for record in changed:
                rows.update(record, history)
            if exclude is not None:
                numbers = numbers[numbers != exclude]
            kinds = rows.kind[numbers]
            done = numbers[kinds == _COMPLETE]
            return Observations(
                x=rows.rows[done].copy(),
                loss=rows.loss[done].copy(),
                numbers=done,
                pending=rows.rows[numbers[kinds == _PENDING]].copy(),
                pruned=rows.rows[numbers[kinds == _PRUNED]].copy(),
                kinds=rows.kinds,
            )
