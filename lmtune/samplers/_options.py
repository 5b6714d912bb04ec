"""Validation of sampler options, where they enter (the constructor): errors name the option and the value."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmtune.exceptions import ConfigError

__all__ = ["check_int", "check_non_negative"]


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int, or ``ConfigError`` when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, but got {value!r}")
    return int(value)


def check_non_negative(name: str, value: Any) -> float:
    """``value`` as a float, or ``ConfigError`` when it is not a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{name} must be a number >= 0, but got {value!r}")
    return float(value)
