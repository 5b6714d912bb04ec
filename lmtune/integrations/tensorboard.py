"""TensorBoard tracker: per-trial scalars and the HParams summary, so TensorBoard's HParams tab compares
trials.

Each finished trial becomes a run folder ``LOGDIR/<study>/trial_<number>`` holding its evaluations by step under
the task's metric names (``accuracy``, ``loss``, ...; ``value`` for an objective), its result under the task's
metric and the HParams session start/end records; the study folder holds the HParams experiment (the declared
space's domains and the metrics). After the search the run ``LOGDIR/<study>/best`` holds the best configuration
as an HParams session and the test scores (``test_<metric>``). Written with TensorBoard's own event writer and
protocol buffers: neither TensorFlow nor torch is needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import MissingDependencyError
from lmtune.integrations.trackers import metric_name, step_metrics, test_metrics
from lmtune.space import CategoricalDistribution, Distribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["TensorBoardTracker"]


def _imports() -> Any:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as exc:
        raise MissingDependencyError(
            "the TensorBoard tracker needs tensorboard: pip install 'lmtune[viz]'"
        ) from exc
    return event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, EventFileWriter


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


class TensorBoardTracker:
    """A study callback writing TensorBoard event files under ``logdir`` (``tensorboard --logdir LOGDIR``)."""

    def __init__(self, logdir: str | Path = "tensorboard") -> None:
        _imports()
        self.logdir = Path(logdir)
        self._experiments: set[str] = set()

    def __call__(self, study: Study, record: TrialRecord) -> None:
        if not record.state.is_finished():  # paused trials are written when they finish
            return
        root = self.logdir / _safe(study.study_name)
        metric = metric_name(study)
        steps = step_metrics(record, metric)
        if study.study_name not in self._experiments and study.space is not None:
            names = list(dict.fromkeys([metric, *(n for values in steps.values() for n in values)]))
            self._write_experiment(root, study.space, names)
            self._experiments.add(study.study_name)
        self._write_trial(root / f"trial_{record.number:05d}", record, metric, steps)

    def log_study_result(self, study: Study, summary: Mapping[str, Any] | None) -> None:
        """The run ``best``: the best trial's configuration as an HParams session, its result and the test
        scores as scalars."""
        best = study.history().best()
        if best is None:
            return
        root = self.logdir / _safe(study.study_name)
        scalars = {metric_name(study): float(best.value or 0.0), **test_metrics(summary)}
        self._write_session(
            root / "best", best.params, best.started_at, best.finished_at, scalars, failed=False
        )

    def _summary_event(self, tag: str, content: bytes, wall_time: float) -> Any:
        event_pb2, summary_pb2, _, metadata, _, _ = _imports()
        meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name=metadata.PLUGIN_NAME, content=content
            )
        )
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta)])
        return event_pb2.Event(wall_time=wall_time, summary=summary)

    def _write_experiment(self, root: Path, space: SearchSpace, metrics: list[str]) -> None:
        _, _, api_pb2, metadata, plugin_data_pb2, writer_class = _imports()
        infos = [_hparam_info(api_pb2, name, space[name]) for name in space]
        experiment = api_pb2.Experiment(
            hparam_infos=infos,
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in metrics],
        )
        data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, experiment=experiment)
        writer = writer_class(str(root))
        writer.add_event(self._summary_event(metadata.EXPERIMENT_TAG, data.SerializeToString(), time.time()))
        writer.close()

    def _write_trial(
        self, folder: Path, record: TrialRecord, metric: str, steps: dict[int, dict[str, float]]
    ) -> None:
        event_pb2, summary_pb2, *_ = _imports()
        end = record.finished_at or time.time()
        events = [
            _scalar(event_pb2, summary_pb2, name, value, step, end)
            for step, values in sorted(steps.items())
            for name, value in values.items()
        ]
        if record.value is not None:  # the trial's result, after its evaluations
            last = max(steps) if steps else 0
            events.append(_scalar(event_pb2, summary_pb2, metric, record.value, last, end))
        failed = record.state is TrialState.FAILED
        self._write_session(folder, record.params, record.started_at, record.finished_at, events, failed)

    def _write_session(
        self,
        folder: Path,
        params: Mapping[str, Any],
        started: float | None,
        finished: float | None,
        scalars: Mapping[str, float] | list[Any],
        failed: bool,
    ) -> None:
        """One HParams session (its parameters, start and end records) with ``scalars``: events, or a mapping of
        tag to value logged at step 0."""
        event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, writer_class = _imports()
        start = started or time.time()
        end = finished or time.time()
        writer = writer_class(str(folder))
        session = plugin_data_pb2.SessionStartInfo(group_name=folder.name, start_time_secs=start)
        for name, value in params.items():
            _set_value(session.hparams[name], value)
        start_data = plugin_data_pb2.HParamsPluginData(
            version=metadata.PLUGIN_DATA_VERSION, session_start_info=session
        )
        writer.add_event(
            self._summary_event(metadata.SESSION_START_INFO_TAG, start_data.SerializeToString(), start)
        )
        events = (
            [_scalar(event_pb2, summary_pb2, k, v, 0, end) for k, v in scalars.items()]
            if isinstance(scalars, Mapping)
            else scalars
        )
        for event in events:
            writer.add_event(event)
        status = api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS
        end_data = plugin_data_pb2.HParamsPluginData(
            version=metadata.PLUGIN_DATA_VERSION,
            session_end_info=plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end),
        )
        writer.add_event(
            self._summary_event(metadata.SESSION_END_INFO_TAG, end_data.SerializeToString(), end)
        )
        writer.close()


def _scalar(event_pb2: Any, summary_pb2: Any, tag: str, value: float, step: int, wall_time: float) -> Any:
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))])
    return event_pb2.Event(wall_time=wall_time, step=int(step), summary=summary)


def _set_value(target: Any, value: Any) -> None:
    """Fill a protobuf ``Value``: numbers, strings and booleans as such, anything else as JSON text."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, (int, float)):
        target.number_value = float(value)
    elif isinstance(value, str):
        target.string_value = value
    else:
        target.string_value = json.dumps(value)


def _hparam_info(api_pb2: Any, name: str, dist: Distribution) -> Any:
    info = api_pb2.HParamInfo(name=name)
    if isinstance(dist, CategoricalDistribution):
        kinds = {type(c) for c in dist.choices}
        info.type = (
            api_pb2.DATA_TYPE_BOOL
            if kinds == {bool}
            else api_pb2.DATA_TYPE_FLOAT64
            if kinds <= {int, float}
            else api_pb2.DATA_TYPE_STRING
        )
        for choice in dist.choices:
            _set_value(info.domain_discrete.values.add(), choice)
    else:
        info.type = api_pb2.DATA_TYPE_FLOAT64
        info.domain_interval.min_value = float(dist.low)  # type: ignore[attr-defined]
        info.domain_interval.max_value = float(dist.high)  # type: ignore[attr-defined]
    return info
