"""The ``trackers:`` key of a study file: which experiment trackers receive each finished trial.

``trackers: [tensorboard, mlflow, wandb]`` enables them with defaults; a mapping gives options, e.g.
``trackers: [{tensorboard: {logdir: runs}}, {mlflow: {tracking_uri: "sqlite:///mlflow.db"}}]``. Relative paths
are resolved against the study file's folder. Each tracker is a study callback ``(study, record)`` run after
every trial; its library is imported only when it is enabled.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = ["TRACKERS", "TrackerSpec", "make_trackers", "parse_trackers"]


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
            options = dict(options or {})
        else:
            raise ConfigError(f"`trackers[{i}]` must be a name or {{name: {{options}}}}, but got {item!r}")
        if name not in TRACKERS:
            raise ConfigError(f"`trackers[{i}]`: unknown tracker {name!r}; choose from {list(TRACKERS)}")
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            raise ConfigError(f"`trackers[{i}].{name}` options must be a mapping, but got {options!r}")
        allowed = _option_names(name)
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(f"`trackers[{i}].{name}`: unknown option(s) {unknown}; allowed: {allowed}")
        specs.append(TrackerSpec(name, options))
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
