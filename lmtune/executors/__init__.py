"""Where trials run: in the calling process, in a local process pool with GPU slots, on Ray, in fused groups, or on
a simulated clock.

Executors decide nothing about what to try: they ask the study for trials, run them and let storage hold every
outcome. The contract is :class:`~lmtune.executors.base.Executor` (``optimize`` with the arguments of
:meth:`lmtune.study.Study.optimize`); each backend lives in its own module (in-process, local, ray, fused; the
local pool and Ray share the loop of :mod:`~lmtune.executors.processes`), and :data:`EXECUTORS` names the ones a
study file can choose. Every path ends a trial through :mod:`lmtune.lifecycle`. The backends load on first use
(the study imports the retry policy from here, and Ray is an optional extra).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lmtune.executors.retry import RetryPolicy
from lmtune.executors.settings import ExecutionSettings, HeartbeatSettings, Resources, execution_from_config

if TYPE_CHECKING:
    from lmtune.executors.base import Executor
    from lmtune.executors.processes import ProcessExecutor

__all__ = [
    "EXECUTORS",
    "ExecutionSettings",
    "Executor",
    "FusedExecutor",
    "HeartbeatSettings",
    "InProcessExecutor",
    "LocalExecutor",
    "RayExecutor",
    "Resources",
    "RetryPolicy",
    "SimulatedExecutor",
    "StudyRef",
    "execution_from_config",
    "make_executor",
]

# The executors a study file names (``executor: NAME``), as "module:class", imported when chosen.
EXECUTORS: dict[str, str] = {
    "local": "lmtune.executors.local:LocalExecutor",
    "ray": "lmtune.executors.ray:RayExecutor",
}

_LAZY = {
    "Executor": "lmtune.executors.base",
    "FusedExecutor": "lmtune.executors.fused",
    "InProcessExecutor": "lmtune.executors.in_process",
    "LocalExecutor": "lmtune.executors.local",
    "RayExecutor": "lmtune.executors.ray",
    "SimulatedExecutor": "lmtune.executors.simulated",
    "StudyRef": "lmtune.executors.ref",
}


def executor_class(name: str) -> Callable[..., ProcessExecutor]:
    """The executor class registered as ``name`` in :data:`EXECUTORS` (built with ``workers``, ``resources``,
    ``trial_timeout`` and its own options)."""
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def make_executor(settings: ExecutionSettings) -> Executor | None:
    """The executor the settings ask for; None when trials run in the calling process."""
    if settings.in_process:
        return None
    return executor_class(settings.executor)(
        workers=settings.workers,
        resources=settings.resources,
        trial_timeout=settings.trial_timeout,
        **dict(settings.executor_options),
    )


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lmtune.executors' has no attribute {name!r}")
