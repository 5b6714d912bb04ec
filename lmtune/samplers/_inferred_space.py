"""The space of a define-by-run study, kept up to date as trials finish instead of recomputed from every record.

:meth:`TrialHistory.inferred_space` compares every finished trial's distributions on each call, which costs
O(trials x parameters) equality checks per suggestion. Finished trials never change their parameters, so each one
is folded in once; the result is always equal to ``history.inferred_space()``, and the same object is returned
while it does not change (samplers then find their per-space caches by identity).
"""

from __future__ import annotations

import threading

from lmtune.history import TrialHistory
from lmtune.space import Distribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["InferredSpaceCache"]


class _Intersection:
    """The parameters a group of trials shares with one distribution, ordered as in its lowest-numbered trial."""

    def __init__(self) -> None:
        self.folded: set[int] = set()
        self.common: dict[str, Distribution] = {}
        self.first: TrialRecord | None = None

    def fold(self, record: TrialRecord) -> None:
        self.folded.add(record.number)
        if self.first is None:
            self.common = dict(record.distributions)
        else:
            dists = record.distributions
            for name, dist in list(self.common.items()):
                other = dists.get(name)
                if other is not dist and other != dist:
                    del self.common[name]
        if self.first is None or record.number < self.first.number:
            self.first = record

    def names(self) -> tuple[str, ...]:
        if self.first is None:
            return ()
        return tuple(name for name in self.first.distributions if name in self.common)


class InferredSpaceCache:
    """``history.inferred_space()`` for successive snapshots of one study (thread-safe)."""

    def __init__(self) -> None:
        self._complete = _Intersection()
        self._finished = _Intersection()
        self._last: tuple[_Intersection, tuple[str, ...], SearchSpace] | None = None
        self._unfinished: set[int] = set()  # numbers seen before they finished
        self._known = 0  # trials 0 .. known - 1 were all seen
        self._lock = threading.Lock()

    def _unseen_or_unfinished(self, records: tuple[TrialRecord, ...]) -> list[TrialRecord]:
        """The records that may need folding; with numbers 0..n-1 (the usual case) without a loop over the rest."""
        n = len(records)
        if n == 0 or records[-1].number != n - 1:
            return list(records)
        known = min(self._known, n)
        self._known = n
        return [records[i] for i in sorted(self._unfinished) if i < known] + list(records[known:])

    def space_of(self, history: TrialHistory) -> SearchSpace:
        with self._lock:
            folded = self._finished.folded
            for record in self._unseen_or_unfinished(history.records):
                if record.number in folded:
                    continue
                if not record.state.is_finished():
                    self._unfinished.add(record.number)
                    continue
                self._unfinished.discard(record.number)
                self._finished.fold(record)
                if record.state is TrialState.COMPLETE and record.value is not None:
                    self._complete.fold(record)
            group = self._complete if self._complete.first is not None else self._finished
            names = group.names()
            if self._last is not None and self._last[0] is group and self._last[1] == names:
                return self._last[2]
            space = SearchSpace({name: group.common[name] for name in names})
            self._last = (group, names, space)
            return space
