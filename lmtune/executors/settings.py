"""How a study's trials run: workers, executor, resources per trial, timeout, retries and heartbeats.

These are the study file's ``workers:``, ``executor:``, ``resources:``, ``trial_timeout:``, ``retry:``,
``heartbeat:`` and ``execution:`` keys, validated here (each error names the key, the bad value and what is allowed). Nothing in this
module starts a process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = [
    "EXECUTORS",
    "FUSE_MODES",
    "FUSE_NEEDS_ONE_PROCESS",
    "ExecutionSettings",
    "HeartbeatSettings",
    "Resources",
    "execution_from_config",
]

EXECUTORS = ("local", "ray")
FUSE_MODES = ("auto", "true", "false")
FUSE_NEEDS_ONE_PROCESS = (
    "`execution.fuse: true` trains fused groups in the calling process, which does not go with `workers`, "
    "`executor: ray`, `resources` or `trial_timeout`; remove those, or use `fuse: auto` to fuse only when they are "
    "absent"
)


def _options(key: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"`{key}` must be a mapping with keys {', '.join(allowed)}, but got {value!r}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"`{key}.{unknown[0]}` is not a known option; the options are {', '.join(allowed)}")
    return dict(value)


def _number(key: str, value: Any, *, minimum: float, strict: bool, integer: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if ok:
        ok = value > minimum if strict else value >= minimum
    if not ok:
        kind = "an integer" if integer else "a number"
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ConfigError(f"`{key}` must be {kind} {bound}, but got {value!r}")
    return value


@dataclass(frozen=True)
class Resources:
    """What one trial needs. ``gpus_per_trial``: a fraction (0.25: four trials share a GPU), a whole number of
    GPUs, 0 (trials see no GPU) or None (trials see whatever the worker sees); ``auto_packing`` (the file's
    ``gpus_per_trial: auto``): the local pool measures how many trials per GPU raise throughput and keeps that. ``processes_per_trial``: how many
    data-parallel processes a trial runs (default: one per GPU of the trial). ``cpus_per_trial``: what the Ray
    executor reserves per trial."""

    gpus_per_trial: float | None = None
    cpus_per_trial: float = 1.0
    processes_per_trial: int | None = None
    auto_packing: bool = False

    @classmethod
    def from_config(cls, value: Any) -> Resources:
        options = _options("resources", value, ("gpus_per_trial", "cpus_per_trial", "processes_per_trial"))
        gpus = options.get("gpus_per_trial")
        auto = gpus == "auto"
        if auto:
            gpus = None
        elif gpus is not None:
            gpus = _number("resources.gpus_per_trial", gpus, minimum=0, strict=False)
            if gpus > 1 and not float(gpus).is_integer():
                raise ConfigError(
                    f"`resources.gpus_per_trial` above 1 must be a whole number of GPUs, but got {gpus!r}"
                )
        cpus = _number("resources.cpus_per_trial", options.get("cpus_per_trial", 1.0), minimum=0, strict=True)
        processes = options.get("processes_per_trial")
        if processes is not None:
            processes = int(
                _number("resources.processes_per_trial", processes, minimum=1, strict=False, integer=True)
            )
        if auto and processes is not None and processes > 1:
            raise ConfigError(
                "`resources.gpus_per_trial: auto` packs one-process trials onto shared GPUs; "
                f"remove `processes_per_trial` ({processes}) or give gpus_per_trial as a number"
            )
        return cls(gpus_per_trial=gpus, cpus_per_trial=cpus, processes_per_trial=processes, auto_packing=auto)

    @property
    def processes(self) -> int:
        """Processes per trial: as set, else one per whole GPU, else one."""
        if self.processes_per_trial is not None:
            return self.processes_per_trial
        if self.gpus_per_trial is not None and self.gpus_per_trial >= 1:
            return int(self.gpus_per_trial)
        return 1


@dataclass(frozen=True)
class HeartbeatSettings:
    """``interval``: seconds between heartbeats of a running trial; ``grace_period``: seconds without one after
    which the trial counts as lost (its worker died) and is failed."""

    interval: float = 5.0
    grace_period: float = 30.0

    @classmethod
    def from_config(cls, value: Any) -> HeartbeatSettings:
        options = _options("heartbeat", value, ("interval", "grace_period"))
        interval = _number(
            "heartbeat.interval", options.get("interval", cls.interval), minimum=0, strict=True
        )
        grace = _number(
            "heartbeat.grace_period", options.get("grace_period", cls.grace_period), minimum=0, strict=True
        )
        if grace <= interval:
            raise ConfigError(
                f"`heartbeat.grace_period` ({grace:g} s) must be longer than `heartbeat.interval` ({interval:g} s), "
                f"or every running trial would count as lost; several intervals is usual"
            )
        return cls(interval=float(interval), grace_period=float(grace))


@dataclass(frozen=True)
class ExecutionSettings:
    """Where and how trials run. ``workers`` None with no resources or timeout: trials run one after another in
    the calling process; otherwise each trial gets its own process (local pool) or Ray task.

    ``fuse`` (``execution: {fuse: ...}``): ``"true"`` or ``"auto"`` train a ``task:`` study's trials in fused
    groups of up to ``group_size`` trials in the calling process (see ``lmtune.executors.fused``); ``"auto"``
    falls back to the settings above when they ask for processes; ``"false"`` (the default) never fuses."""

    workers: int | None = None
    executor: str = "local"
    executor_options: Mapping[str, Any] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    trial_timeout: float | None = None
    max_retries: int = 0
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    fuse: str = "false"
    group_size: int | None = None

    @property
    def in_process(self) -> bool:
        """Whether trials run in the calling process (no pool is needed for what was asked)."""
        return (
            self.executor == "local"
            and self.workers is None
            and self.trial_timeout is None
            and self.resources == Resources()
        )


def _executor(value: Any) -> tuple[str, dict[str, Any]]:
    if value is None:
        return "local", {}
    if isinstance(value, str):
        value = {"name": value}
    options = _options("executor", value, ("name", "address", "namespace"))
    name = options.pop("name", None)
    if name not in EXECUTORS:
        raise ConfigError(f"`executor.name` must be one of {', '.join(EXECUTORS)}, but got {name!r}")
    if name == "local" and options:
        raise ConfigError(f"`executor.{sorted(options)[0]}` is an option of the ray executor, not of local")
    return name, options


def _retries(value: Any) -> int:
    options = _options("retry", value, ("max_retries",))
    retries = options.get("max_retries", 0)
    return int(_number("retry.max_retries", retries, minimum=0, strict=False, integer=True))


def _fusing(value: Any) -> tuple[str, int | None]:
    """``execution: {fuse: auto|true|false, group_size: N}`` -> (mode, group size or None: the default)."""
    options = _options("execution", value, ("fuse", "group_size"))
    fuse = options.get("fuse", "false")
    if isinstance(fuse, bool):  # YAML reads true/false as booleans
        fuse = "true" if fuse else "false"
    if fuse not in FUSE_MODES:
        raise ConfigError(f"`execution.fuse` must be one of {', '.join(FUSE_MODES)}, but got {fuse!r}")
    size = options.get("group_size")
    if size is not None:
        size = int(_number("execution.group_size", size, minimum=1, strict=False, integer=True))
    return fuse, size


def execution_from_config(
    *,
    workers: Any = None,
    executor: Any = None,
    resources: Any = None,
    trial_timeout: Any = None,
    retry: Any = None,
    heartbeat: Any = None,
    execution: Any = None,
) -> ExecutionSettings:
    """Validate the execution keys of a study file (each may be None: not given)."""
    if workers is not None:
        workers = int(_number("workers", workers, minimum=1, strict=False, integer=True))
    if trial_timeout is not None:
        trial_timeout = float(_number("trial_timeout", trial_timeout, minimum=0, strict=True))
    name, options = _executor(executor)
    fuse, group_size = _fusing(execution)
    settings = ExecutionSettings(
        workers=workers,
        executor=name,
        executor_options=options,
        resources=Resources.from_config(resources),
        trial_timeout=trial_timeout,
        max_retries=_retries(retry),
        heartbeat=HeartbeatSettings.from_config(heartbeat),
        fuse=fuse,
        group_size=group_size,
    )
    if settings.resources.auto_packing and name != "local":
        raise ConfigError(
            f"`resources.gpus_per_trial: auto` is applied by the local pool, not by {name}; give "
            f"gpus_per_trial as a number (0.25: four trials per GPU)"
        )
    if fuse == "true" and not settings.in_process:
        raise ConfigError(FUSE_NEEDS_ONE_PROCESS)
    return settings
