"""The read-only view of a study's trials that samplers and schedulers receive."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lmtune.space import Distribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

__all__ = ["Direction", "TrialHistory"]


class Direction(str, enum.Enum):
    """Which way is better. A plain string compares equal to its member (``Direction.MINIMIZE == "minimize"``)."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"

    @property
    def sign(self) -> float:
        """+1 when minimising, -1 when maximising: ``sign * value`` is a loss, lower is better."""
        return 1.0 if self is Direction.MINIMIZE else -1.0

    def loss(self, value: float) -> float:
        """``value`` as a loss: lower is better whatever the direction."""
        return self.sign * value

    def better(self, value: float, than: float) -> bool:
        """Whether ``value`` is strictly better than ``than``."""
        return self.loss(value) < self.loss(than)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class TrialHistory(Sequence[TrialRecord]):
    """An immutable snapshot of a study's trial records, ordered by trial number.

    Algorithms read it and never write; ``signed`` turns values into "lower is better" so minimisers need no
    direction logic.
    """

    records: tuple[TrialRecord, ...]
    direction: Direction | str = Direction.MINIMIZE
    space: SearchSpace | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sign", Direction(self.direction).sign)

    def __getitem__(self, index: Any) -> Any:
        return self.records[index]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.records)

    @property
    def sign(self) -> float:
        """+1 when minimising, -1 when maximising (:attr:`Direction.sign`)."""
        return self._sign  # type: ignore[attr-defined,no-any-return]

    def signed(self, value: float) -> float:
        """``value`` as a loss: lower is better whatever the direction."""
        return self._sign * value  # type: ignore[attr-defined,no-any-return]

    def complete(self) -> list[TrialRecord]:
        """Finished trials with a value (COMPLETE)."""
        return [r for r in self.records if r.state is TrialState.COMPLETE and r.value is not None]

    def running(self) -> list[TrialRecord]:
        return [r for r in self.records if r.state is TrialState.RUNNING]

    def ranked(self) -> list[TrialRecord]:
        """The COMPLETE trials, best first (the lower number first among ties)."""
        return sorted(self.complete(), key=self._rank)

    def best(self) -> TrialRecord | None:
        """The COMPLETE trial with the best value (the lowest number among ties)."""
        done = self.complete()
        return min(done, key=self._rank) if done else None

    def _rank(self, record: TrialRecord) -> tuple[float, int]:
        return self.signed(record.value), record.number  # type: ignore[arg-type]

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
