"""TensorBoard tracker: per-trial scalars and the HParams summary, so TensorBoard's HParams tab compares
trials.

Each finished trial becomes a run folder ``LOGDIR/<study>/trial_<number>`` holding its reported values (tag
``intermediate``, by step), its final ``value`` and the HParams session start/end records; the study folder
holds the HParams experiment (the declared space's domains and the metrics). Written with TensorBoard's own
event writer and protocol buffers: neither TensorFlow nor torch is needed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmtune.exceptions import MissingDependencyError
from lmtune.space import CategoricalDistribution, Distribution, SearchSpace
from lmtune.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from lmtune.study import Study

__all__ = ["TensorBoardTracker"]

METRICS = ("value", "intermediate")


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
        if study.study_name not in self._experiments and study.space is not None:
            self._write_experiment(root, study.space)
            self._experiments.add(study.study_name)
        self._write_trial(root / f"trial_{record.number:05d}", record)

    def _summary_event(self, tag: str, content: bytes, wall_time: float) -> Any:
        event_pb2, summary_pb2, _, metadata, _, _ = _imports()
        meta = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name=metadata.PLUGIN_NAME, content=content
            )
        )
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta)])
        return event_pb2.Event(wall_time=wall_time, summary=summary)

    def _write_experiment(self, root: Path, space: SearchSpace) -> None:
        _, _, api_pb2, metadata, plugin_data_pb2, writer_class = _imports()
        infos = [_hparam_info(api_pb2, name, space[name]) for name in space]
        experiment = api_pb2.Experiment(
            hparam_infos=infos,
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=t)) for t in METRICS],
        )
        data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, experiment=experiment)
        writer = writer_class(str(root))
        writer.add_event(self._summary_event(metadata.EXPERIMENT_TAG, data.SerializeToString(), time.time()))
        writer.close()

    def _write_trial(self, folder: Path, record: TrialRecord) -> None:
        event_pb2, summary_pb2, api_pb2, metadata, plugin_data_pb2, writer_class = _imports()
        start = record.started_at or time.time()
        end = record.finished_at or time.time()
        writer = writer_class(str(folder))
        session = plugin_data_pb2.SessionStartInfo(group_name=folder.name, start_time_secs=start)
        for name, value in record.params.items():
            _set_value(session.hparams[name], value)
        start_data = plugin_data_pb2.HParamsPluginData(
            version=metadata.PLUGIN_DATA_VERSION, session_start_info=session
        )
        writer.add_event(
            self._summary_event(metadata.SESSION_START_INFO_TAG, start_data.SerializeToString(), start)
        )
        steps = sorted(record.intermediate)
        for step in steps:
            writer.add_event(
                _scalar(event_pb2, summary_pb2, "intermediate", record.intermediate[step], step, end)
            )
        if record.value is not None:
            writer.add_event(
                _scalar(event_pb2, summary_pb2, "value", record.value, steps[-1] if steps else 0, end)
            )
        status = api_pb2.STATUS_FAILURE if record.state is TrialState.FAILED else api_pb2.STATUS_SUCCESS
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
