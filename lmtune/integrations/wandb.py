"""Weights & Biases tracker, offline by default: one run per trial, grouped by study.

Runs are written under ``DIR/wandb/offline-run-*``; ``wandb sync DIR/wandb/offline-run-*`` uploads them later.
Each run holds the trial's parameters as its config, its reported values (``intermediate`` by step) and its
final ``value`` and ``state`` in the summary. ``mode: online`` logs straight to the W&B server instead.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.trial import TrialRecord

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["WandbTracker"]

MODES = ("offline", "online", "disabled")


class WandbTracker:
    """A study callback logging each finished trial as a W&B run in ``dir`` (project: the study name)."""

    def __init__(
        self,
        dir: str | Path = ".",
        project: str | None = None,
        mode: str = "offline",
        entity: str | None = None,
    ) -> None:
        try:
            import wandb
        except ImportError as exc:
            raise MissingDependencyError("the W&B tracker needs wandb: pip install 'lmtune[viz]'") from exc
        if mode not in MODES:
            raise ConfigError(f"trackers.wandb.mode must be one of {list(MODES)}, but got {mode!r}")
        self._wandb = wandb
        self.dir = Path(dir)
        self.project = project
        self.mode = mode
        self.entity = entity
        self._lock = threading.Lock()

    def __call__(self, study: Study, record: TrialRecord) -> None:
        if not record.state.is_finished():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        settings: Any = self._wandb.Settings(silent=True, console="off", x_disable_stats=True)
        with self._lock:
            run = self._wandb.init(
                mode=self.mode,
                dir=str(self.dir),
                project=self.project or study.study_name,
                entity=self.entity,
                group=study.study_name,
                name=f"trial-{record.number}",
                config=dict(record.params),
                tags=[record.state.value.lower()],
                reinit="create_new",
                settings=settings,
            )
            for step, value in sorted(record.intermediate.items()):
                run.log({"intermediate": value}, step=step)
            run.summary["state"] = record.state.value
            run.summary["trial"] = record.number
            if record.value is not None:
                run.summary["value"] = record.value
            if record.failure_reason:
                run.summary["failure_reason"] = record.failure_reason
            run.finish(exit_code=1 if record.state.value == "FAILED" else 0)
