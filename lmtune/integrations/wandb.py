"""Weights & Biases tracker, offline by default: one run per trial, grouped by study.

Runs are written under ``DIR/wandb/offline-run-*``; ``wandb sync DIR/wandb/offline-run-*`` uploads them later.
Each run holds the trial's parameters as its config, its evaluations by step under the task's metric names
(``accuracy``, ``loss``, ...; ``value`` for an objective) and its result under the task's metric and its
``state`` in the summary. After the search, the run ``study`` (job type ``study``) holds the best configuration
and the test scores (``test_<metric>``). ``mode: online`` logs straight to the W&B server instead.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import ConfigError, MissingDependencyError
from lmtune.integrations.trackers import metric_name, step_metrics, test_metrics
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

    def _init(self, study: Study, name: str, config: Mapping[str, Any], **options: Any) -> Any:
        self.dir.mkdir(parents=True, exist_ok=True)
        settings: Any = self._wandb.Settings(silent=True, console="off", x_disable_stats=True)
        return self._wandb.init(
            mode=self.mode,
            dir=str(self.dir),
            project=self.project or study.study_name,
            entity=self.entity,
            group=study.study_name,
            name=name,
            config=dict(config),
            reinit="create_new",
            settings=settings,
            **options,
        )

    def __call__(self, study: Study, record: TrialRecord) -> None:
        if not record.state.is_finished():
            return
        metric = metric_name(study)
        with self._lock:
            run = self._init(
                study, f"trial-{record.number}", record.params, tags=[record.state.value.lower()]
            )
            for step, values in sorted(step_metrics(record, metric).items()):
                run.log(values, step=step)
            run.summary["state"] = record.state.value
            run.summary["trial"] = record.number
            if record.value is not None:
                run.summary[metric] = record.value
            if record.failure_reason:
                run.summary["failure_reason"] = record.failure_reason
            run.finish(exit_code=1 if record.state.value == "FAILED" else 0)

    def log_study_result(self, study: Study, summary: Mapping[str, Any] | None) -> None:
        """The run ``study``: the best configuration as its config, the best trial and test scores in its
        summary."""
        best = study.history().best()
        with self._lock:
            run = self._init(study, "study", best.params if best else {}, job_type="study")
            if best is not None:
                run.summary["best_trial"] = best.number
                run.summary[f"best_{metric_name(study)}"] = best.value
            for key, value in test_metrics(summary).items():
                run.summary[key] = value
            run.finish()
