"""Scripted trial records for scheduler tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lmtune.history import TrialHistory
from lmtune.trial import TrialRecord, TrialState


def make_record(
    number: int,
    intermediate: dict[int, float],
    state: TrialState = TrialState.RUNNING,
    value: float | None = None,
    **attrs: Any,
) -> TrialRecord:
    return TrialRecord(
        trial_id=number,
        number=number,
        state=state,
        intermediate=intermediate,
        value=value,
        system_attrs=attrs,
    )


@pytest.fixture
def record() -> Callable[..., TrialRecord]:
    """``record(number, {step: value}, state=..., value=..., **system_attrs)``."""
    return make_record


@pytest.fixture
def history() -> Callable[..., TrialHistory]:
    """``history(*records, direction="maximize", space=None)``."""

    def build(*records: TrialRecord, direction: str = "maximize", space: Any = None) -> TrialHistory:
        return TrialHistory(tuple(sorted(records, key=lambda r: r.number)), direction, space)

    return build
