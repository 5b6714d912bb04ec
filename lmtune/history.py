"""The read-only view of a study's trials that samplers and schedulers receive."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lmtune.space import Distribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["Direction", "TrialHistory"]

Direction = str  # "minimize" or "maximize"


@dataclass(frozen=True)
class TrialHistory(Sequence[TrialRecord]):
    """An immutable snapshot of a study's trial records, ordered by trial number.

    Algorithms read it and never write; ``signed`` turns values into "lower is better" so minimisers need no
    direction logic.
    """

    records: tuple[TrialRecord, ...]
    direction: Direction = "minimize"
    space: SearchSpace | None = None

    def __getitem__(self, index: Any) -> Any:
        return self.records[index]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.records)

    @property
    def sign(self) -> float:
        """+1 when minimising, -1 when maximising."""
        return 1.0 if self.direction == "minimize" else -1.0

    def signed(self, value: float) -> float:
        """``value`` as a loss: lower is better whatever the direction."""
        return self.sign * value

    def with_states(self, *states: TrialState) -> list[TrialRecord]:
        return [r for r in self.records if r.state in states]

    def complete(self) -> list[TrialRecord]:
        """Finished trials with a value (COMPLETE)."""
        return [r for r in self.records if r.state is TrialState.COMPLETE and r.value is not None]

    def running(self) -> list[TrialRecord]:
        return [r for r in self.records if r.state is TrialState.RUNNING]

    def best(self) -> TrialRecord | None:
        """The COMPLETE trial with the best value (the lowest number among ties)."""
        done = self.complete()
        if not done:
            return None
        return min(done, key=lambda r: (self.signed(r.value), r.number))  # type: ignore[arg-type]

    def inferred_space(self) -> SearchSpace:
        """For define-by-run studies: the parameters every COMPLETE trial shares with one distribution."""
        done = self.complete() or [r for r in self.records if r.state.is_finished()]
        if not done:
            return SearchSpace({})
        common: dict[str, Distribution] = dict(done[0].distributions)
        for record in done[1:]:
            for name in list(common):
                if record.distributions.get(name) != common[name]:
                    del common[name]
        return SearchSpace(common)
