"""The ``trackers:`` key of a study file: which experiment trackers receive each finished trial.

``trackers: [tensorboard, mlflow, wandb]`` enables them with defaults; a mapping gives options, e.g.
``trackers: [{tensorboard: {logdir: runs}}, {mlflow: {tracking_uri: "sqlite:///mlflow.db"}}]``. Relative paths
are resolved against the study file's folder. Each tracker is a study callback ``(study, record)`` run after
every trial; its library is imported only when it is enabled.

Metrics carry the task's names: a fine-tuning trial's evaluations (``accuracy``, ``loss``, ``train_loss``, ... by
report step, from its ``eval_history``) and its result under the task's metric; a study with an ``objective:``
logs ``value``. After the search, :func:`log_study_result` gives each tracker the best configuration and the
final test scores (``test_accuracy``, ...), logged on the study's own (parent) run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtune.analysis.records import metric_name as study_metric
from lmtune.exceptions import ConfigError

__all__ = [
    "TRACKERS",
    "TrackerSpec",
    "log_study_result",
    "make_trackers",
    "metric_name",
    "parse_trackers",
    "step_metrics",
    "test_metrics",
]

STEP_KEYS = ("step", "optimizer_step")  # eval_history fields that are positions, not metrics


@dataclass(frozen=True)
class _Tracker:
    module: str
    cls: str
    path_options: tuple[str, ...]  # options that name a folder, resolved against the study file's folder
    defaults: Callable[[Path], dict[str, Any]]


TRACKERS: dict[str, _Tracker] = {
    "tensorboard": _Tracker(
        "lmtune.integrations.tensorboard",
        "TensorBoardTracker",
        ("logdir",),
        lambda base: {"logdir": base / "tensorboard"},
    ),
    "mlflow": _Tracker(
        "lmtune.integrations.mlflow",
        "MLflowTracker",
        (),
        lambda base: {"tracking_uri": (base / "mlruns").resolve().as_uri()},
    ),
    "wandb": _Tracker("lmtune.integrations.wandb", "WandbTracker", ("dir",), lambda base: {"dir": base}),
}


@dataclass(frozen=True)
class TrackerSpec:
    """One enabled tracker and the options given in the study file."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _tracker_class(name: str) -> Any:
    entry = TRACKERS[name]
    return getattr(importlib.import_module(entry.module), entry.cls)


def parse_trackers(value: Sequence[Any] | Mapping[str, Any] | None) -> list[TrackerSpec]:
    """Validate the ``trackers:`` value: known names and option keys (no tracker library is imported)."""
    if value is None:
        return []
    items = [{k: v} for k, v in value.items()] if isinstance(value, Mapping) else list(value)
    specs: list[TrackerSpec] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, options = item, {}
        elif isinstance(item, Mapping) and len(item) == 1:
            name, options = next(iter(item.items()))
            options = {} if options is None else options
        else:
            raise ConfigError(f"trackers[{i}]: must be a name or {{name: {{options}}}}, but got {item!r}")
        if not isinstance(name, str) or name not in TRACKERS:
            raise ConfigError(f"trackers[{i}]: unknown tracker {name!r}; choose from {list(TRACKERS)}")
        if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
            raise ConfigError(f"trackers[{i}].{name}: options must be a mapping, but got {options!r}")
        allowed = _option_names(name)
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(f"trackers[{i}].{name}: unknown option(s) {unknown}; allowed: {allowed}")
        specs.append(TrackerSpec(name, dict(options)))
    return specs


def _option_names(name: str) -> list[str]:
    """The tracker's constructor arguments (tracker modules import their library only when constructed)."""
    return [p for p in inspect.signature(_tracker_class(name)).parameters]


def make_trackers(specs: Sequence[TrackerSpec], base_dir: str | Path = ".") -> list[Callable[..., None]]:
    """The study callbacks of the enabled trackers, with defaults and relative paths under ``base_dir``."""
    base = Path(base_dir)
    callbacks = []
    for spec in specs:
        entry = TRACKERS[spec.name]
        options = {**entry.defaults(base), **spec.options}
        for key in entry.path_options:
            if key in options and not Path(options[key]).is_absolute():
                options[key] = base / options[key]
        cls = _tracker_class(spec.name)
        callbacks.append(cls(**options))
    return callbacks


# What trackers log ------------------------------------------------------------------------------------------------
def metric_name(study: Any) -> str:
    """The task's metric (e.g. ``accuracy``), or ``value`` for a study with an objective."""
    return study_metric(study.attrs)


def step_metrics(record: Any, metric: str) -> dict[int, dict[str, float]]:
    """Every evaluation's metrics by report step: the trial's ``eval_history`` when it has one, else its reported
    values under ``metric``."""
    history = record.user_attrs.get("eval_history") or []
    if history:
        return {
            int(entry["step"]): {
                k: float(v)
                for k, v in entry.items()
                if k not in STEP_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            for entry in history
            if "step" in entry
        }
    return {int(step): {metric: float(value)} for step, value in record.intermediate.items()}


def test_metrics(summary: Mapping[str, Any] | None) -> dict[str, float]:
    """``test_<metric>`` scores (and the interval bounds ``test_<metric>_low``/``_high``) of the end-of-study
    summary: the task's saved best model, or the final evaluation."""
    if not summary:
        return {}
    test = summary.get("test") or {}
    out: dict[str, float] = {}
    if "score" in test and "metric" in test:  # final evaluation: one score with its interval
        metric = str(test["metric"])
        out[f"test_{metric}"] = float(test["score"])
        bounds = (test.get("ci_low"), test.get("ci_high"))
    else:
        metric = str(summary.get("metric"))
        out.update({f"test_{k}": float(v) for k, v in test.items() if isinstance(v, (int, float))})
        bounds = tuple(summary.get("test_interval") or (None, None))  # type: ignore[assignment]
    if bounds[0] is not None and bounds[1] is not None:
        out[f"test_{metric}_low"], out[f"test_{metric}_high"] = float(bounds[0]), float(bounds[1])
    return out


def log_study_result(callbacks: Sequence[Any], study: Any, summary: Mapping[str, Any] | None) -> None:
    """Give every tracker among ``callbacks`` the end of the study: the best configuration and the test scores
    of ``summary`` (None when there was no end-of-study step)."""
    for callback in callbacks:
        log = getattr(callback, "log_study_result", None)
        if log is not None:
            log(study, summary)
