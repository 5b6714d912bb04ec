"""Where trials run: in the calling process, on a simulated clock, in a local process pool with GPU slots, or on Ray.

Executors decide nothing about what to try: they ask the study for trials, run them elsewhere and let storage hold
every outcome. The pool and Ray executors load on first use (the study imports the retry policy from here).
"""

from __future__ import annotations

import importlib
from typing import Any

from lmtune.executors.retry import RetryPolicy
from lmtune.executors.settings import ExecutionSettings, HeartbeatSettings, Resources, execution_from_config

__all__ = [
    "ExecutionSettings",
    "Executor",
    "HeartbeatSettings",
    "LocalExecutor",
    "RayExecutor",
    "Resources",
    "RetryPolicy",
    "StudyRef",
    "execution_from_config",
    "make_executor",
]

_LAZY = {
    "Executor": "lmtune.executors.base",
    "LocalExecutor": "lmtune.executors.local",
    "RayExecutor": "lmtune.executors.ray",
    "StudyRef": "lmtune.executors.ref",
    "make_executor": "lmtune.executors.base",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lmtune.executors' has no attribute {name!r}")
