"""Helpers shared by storage backends: transitions, timestamps and JSON encoding of records."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from lmtune.exceptions import ConfigError, TrialStateError
from lmtune.space import Distribution, distribution_from_dict
from lmtune.trial import ALLOWED_TRANSITIONS, TrialState

WORKER_LOST = "worker lost"


def now() -> float:
    """Seconds since the epoch (storage timestamps are wall-clock, comparable across machines)."""
    return time.time()


def check_transition(number: int, current: TrialState, target: TrialState) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise TrialStateError(f"trial {number} cannot go from {current.value} to {target.value}")


def check_writable(number: int, state: TrialState) -> None:
    if state.is_finished():
        raise TrialStateError(f"trial {number} is {state.value} and can no longer change")


def dumps(value: Any) -> str:
    """JSON-encode a user value, with an error naming the value when it is not JSON-able."""
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"value {value!r} cannot be stored: it must be JSON-serialisable ({exc})") from None


def encode_distributions(distributions: Mapping[str, Distribution]) -> dict[str, Any]:
    return {name: dist.to_dict() for name, dist in distributions.items()}


def decode_distributions(data: Mapping[str, Any]) -> dict[str, Distribution]:
    return {name: distribution_from_dict(d) for name, d in data.items()}
