"""The settings of a study that every process working on it must share, as one frozen value.

A study hands its :class:`StudyOptions` whole to the processes that run its trials (inside
:class:`lmtune.executors.StudyRef`), so a pool child or a Ray worker keeps heartbeats, retries and the checkpoint
budget exactly as the study that launched it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lmtune.checkpoints import CheckpointBudget
from lmtune.exceptions import ConfigError
from lmtune.executors.retry import RetryPolicy

__all__ = ["DEFAULT_GRACE_PERIOD", "DEFAULT_HEARTBEAT_INTERVAL", "StudyOptions"]

DEFAULT_HEARTBEAT_INTERVAL = 5.0  # seconds between heartbeats of a running trial
DEFAULT_GRACE_PERIOD = 30.0  # seconds without heartbeat after which a RUNNING trial counts as lost


@dataclass(frozen=True)
class StudyOptions:
    """``heartbeat_interval``: seconds between a running trial's heartbeats; ``grace_period``: seconds without one
    after which the trial counts as lost; ``retry``: how often a lost trial is re-run (None: never);
    ``checkpoint_budget``: which trial checkpoints stay on disk (None: all of them); ``checkpoint_root``: the
    folder of the study's trial checkpoints (None: :func:`lmtune.checkpoints.default_checkpoint_root`)."""

    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    grace_period: float = DEFAULT_GRACE_PERIOD
    retry: RetryPolicy | None = None
    checkpoint_budget: CheckpointBudget | None = None
    checkpoint_root: str | None = None

    def __post_init__(self) -> None:
        for name in ("heartbeat_interval", "grace_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"{name} must be a positive number of seconds, but got {value!r}")
        if self.checkpoint_root is not None:
            object.__setattr__(self, "checkpoint_root", str(self.checkpoint_root))

    def updated(self, **changes: Any) -> StudyOptions:
        """A copy with the ``changes`` that are not None."""
        given = {name: value for name, value in changes.items() if value is not None}
        return replace(self, **given) if given else self
