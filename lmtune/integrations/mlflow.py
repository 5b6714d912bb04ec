"""MLflow tracker: one run per trial, nested under one parent run per study.

The experiment is named after the study. The parent run (tag ``lmtune.role=study``) records the best value so
far at each trial number (``best_<metric>``) and, after the search, the best configuration (parameters, tag
``lmtune.best_trial``) and the test scores (``test_<metric>``); it is closed FINISHED after every trial, so a
stopped study leaves no run RUNNING. Each trial's run (tag ``mlflow.parentRunId``) holds its parameters, its
evaluations by step under the task's metric names (``accuracy``, ``loss``, ...; ``value`` for an objective),
its result under the task's metric and its state, and ends FINISHED (complete), KILLED (pruned) or FAILED. The
default store is a local folder (``mlruns`` beside the study file); any tracking URI works, e.g.
``sqlite:///mlflow.db`` or an MLflow server.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import MissingDependencyError
from lmtune.integrations.trackers import metric_name, step_metrics, test_metrics
from lmtune.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["MLflowTracker"]

MAX_PARAM_LENGTH = 500  # MLflow rejects longer parameter values
RUN_STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED", TrialState.FAILED: "FAILED"}


def _ms(seconds: float | None) -> int:
    return int((seconds if seconds is not None else time.time()) * 1000)


class MLflowTracker:
    """A study callback logging each finished trial to MLflow at ``tracking_uri`` (default: ``./mlruns``)."""

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise MissingDependencyError(
                "the MLflow tracker needs mlflow: pip install 'lmtune[viz]'"
            ) from exc
        self.tracking_uri = tracking_uri or Path("mlruns").resolve().as_uri()
        if self.tracking_uri.startswith("file:") or "://" not in self.tracking_uri:
            # MLflow 3 keeps its folder store behind this switch; the folder store is what needs no server or DB.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        self._parents: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def _parent(self, study: Study) -> tuple[str, str]:
        """(experiment id, parent run id) of the study, created on first use and found again on resume."""
        name = study.study_name
        if name in self._parents:
            return self._parents[name]
        experiment_name = self.experiment or name
        experiment = self.client.get_experiment_by_name(experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment is not None
            else self.client.create_experiment(experiment_name)
        )
        found = self.client.search_runs(
            [experiment_id],
            filter_string=f"tags.`lmtune.study` = '{name}' and tags.`lmtune.role` = 'study'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = self.client.create_run(
                experiment_id,
                run_name=name,
                tags={"lmtune.study": name, "lmtune.role": "study", "lmtune.direction": study.direction},
            ).info.run_id
        self._parents[name] = (experiment_id, run_id)
        return experiment_id, run_id

    def __call__(self, study: Study, record: TrialRecord) -> None:
        if record.state not in RUN_STATUS:
            return
        from mlflow.entities import Metric

        with self._lock:
            experiment_id, parent = self._parent(study)
            run = self.client.create_run(
                experiment_id,
                start_time=_ms(record.started_at),
                run_name=f"trial {record.number}",
                tags={
                    "mlflow.parentRunId": parent,
                    "lmtune.study": study.study_name,
                    "lmtune.role": "trial",
                    "lmtune.trial": str(record.number),
                    "lmtune.state": record.state.value,
                    **({"lmtune.failure_reason": record.failure_reason} if record.failure_reason else {}),
                },
            )
            end = _ms(record.finished_at)
            metric = metric_name(study)
            metrics = [
                Metric(name, value, end, step)
                for step, values in sorted(step_metrics(record, metric).items())
                for name, value in values.items()
            ]
            if record.value is not None:  # last, so it is the run's shown value
                metrics.append(Metric(metric, float(record.value), end, record.last_step or 0))
            self.client.log_batch(run.info.run_id, metrics=metrics, params=_params(record.params))
            self.client.set_terminated(run.info.run_id, status=RUN_STATUS[record.state], end_time=end)
            best = study.history().best()
            if best is not None and best.value is not None:
                self.client.log_metric(
                    parent, f"best_{metric}", float(best.value), timestamp=end, step=record.number
                )
            self.client.set_terminated(parent, status="FINISHED", end_time=end)

    def log_study_result(self, study: Study, summary: Mapping[str, Any] | None) -> None:
        """On the parent run: the best configuration as parameters, its trial number as a tag and the test
        scores as metrics; the run ends FINISHED."""
        from mlflow.entities import Metric

        with self._lock:
            _, parent = self._parent(study)
            best = study.history().best()
            now = _ms(None)
            metrics = [Metric(k, v, now, 0) for k, v in test_metrics(summary).items()]
            params = _params(best.params) if best is not None else []
            self.client.log_batch(parent, metrics=metrics, params=params)
            if best is not None:
                self.client.set_tag(parent, "lmtune.best_trial", str(best.number))
            self.client.set_terminated(parent, status="FINISHED", end_time=now)


def _params(params: Mapping[str, Any]) -> list[Any]:
    """MLflow parameters: strings as they are, other values as JSON, cut to MLflow's length limit."""
    from mlflow.entities import Param

    return [
        Param(k, (v if isinstance(v, str) else json.dumps(v))[:MAX_PARAM_LENGTH]) for k, v in params.items()
    ]
