"""How a study's trials run: workers, executor, resources per trial, timeout, retries and heartbeats.

These are the study file's ``workers:``, ``executor:``, ``resources:``, ``trial_timeout:``, ``retry:``,
``heartbeat:`` and ``execution:`` keys: typed sections (:class:`ExecutionKeys`, whose errors read
``section.field: message``) and the settings built from them. Nothing in this module starts a process.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from lmtune.exceptions import ConfigError
from lmtune.validation import Section, validate_section

__all__ = [
    "EXECUTORS",
    "ExecutionKeys",
    "FUSE_MODES",
    "FUSE_NEEDS_ONE_PROCESS",
    "ExecutionSettings",
    "HeartbeatSettings",
    "Resources",
    "execution_from_config",
    "execution_settings",
]

ExecutorName = Literal["local", "ray"]
FuseMode = Literal["auto", "true", "false"]
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)
FUSE_MODES: tuple[str, ...] = get_args(FuseMode)
FUSE_NEEDS_ONE_PROCESS = (
    "`execution.fuse: true` trains fused groups in the calling process, which does not go with `workers`, "
    "`executor: ray`, `resources` or `trial_timeout`; remove those, or use `fuse: auto` to fuse only when they are "
    "absent"
)


class ResourcesSection(Section):
    """``resources:``: what one trial needs (see :class:`Resources`)."""

    gpus_per_trial: Any = Field(None, description="a fraction, a whole number of GPUs, 0, or auto")
    cpus_per_trial: float = Field(1.0, gt=0, description="what the Ray executor reserves per trial")
    processes_per_trial: int | None = Field(None, ge=1, description="data-parallel processes per trial")

    @field_validator("gpus_per_trial")
    @classmethod
    def _gpus(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise ValueError(f"must be a number >= 0 (0.25: four trials per GPU) or auto, but got {value!r}")
        if value > 1 and not float(value).is_integer():
            raise ValueError(f"above 1 must be a whole number of GPUs, but got {value!r}")
        return value

    @model_validator(mode="after")
    def _auto_packs_single_processes(self) -> ResourcesSection:
        if self.gpus_per_trial == "auto" and (self.processes_per_trial or 1) > 1:
            raise ValueError(
                "`gpus_per_trial: auto` packs one-process trials onto shared GPUs; remove "
                f"`processes_per_trial` ({self.processes_per_trial}) or give gpus_per_trial as a number"
            )
        return self


class HeartbeatSection(Section):
    """``heartbeat:``: seconds between heartbeats, and without one before a trial counts as lost."""

    interval: float = Field(5.0, gt=0, description="seconds between heartbeats of a running trial")
    grace_period: float = Field(30.0, gt=0, description="seconds without a heartbeat before a trial is lost")

    @model_validator(mode="after")
    def _grace_exceeds_interval(self) -> HeartbeatSection:
        if self.grace_period <= self.interval:
            raise ValueError(
                f"`grace_period` ({self.grace_period:g} s) must be longer than `interval` ({self.interval:g} s), "
                f"or every running trial would count as lost; several intervals is usual"
            )
        return self


class ExecutorSection(Section):
    """``executor:``: ``local`` (the default) or ``{name: ray, address: auto, namespace: ...}``."""

    name: ExecutorName
    address: str | None = None
    namespace: str | None = None

    @model_validator(mode="after")
    def _ray_options(self) -> ExecutorSection:
        given = [k for k in ("address", "namespace") if getattr(self, k) is not None]
        if self.name == "local" and given:
            raise ValueError(f"`{given[0]}` is an option of the ray executor, not of local; remove it")
        return self


class RetrySection(Section):
    """``retry:``: how often a trial whose worker was lost is re-run."""

    max_retries: int = Field(0, ge=0)


class FusingSection(Section):
    """``execution:``: train a ``task:`` study's trials in fused groups (see :class:`ExecutionSettings`)."""

    fuse: FuseMode = "false"
    group_size: int | None = Field(None, ge=1)

    @field_validator("fuse", mode="before")
    @classmethod
    def _yaml_boolean(cls, value: Any) -> Any:
        return ("true" if value else "false") if isinstance(value, bool) else value


class ExecutionKeys(Section):
    """The study file's execution keys, each None when not given."""

    workers: int | None = Field(None, ge=1, description="trials at once, each in its own process")
    executor: ExecutorSection | None = Field(
        None, description="local (default) or {name: ray, address: auto}"
    )
    resources: ResourcesSection | None = Field(
        None, description="per trial: gpus_per_trial, processes_per_trial, ..."
    )
    trial_timeout: float | None = Field(
        None, gt=0, description="seconds after which a trial is killed and failed"
    )
    retry: RetrySection | None = Field(
        None, description="{max_retries: N}: re-run trials whose worker was lost"
    )
    heartbeat: HeartbeatSection | None = Field(
        None, description="{interval: 5, grace_period: 30}, in seconds"
    )
    execution: FusingSection | None = Field(
        None, description="{fuse: auto|true|false, group_size: N}: train a task's trials in fused groups"
    )

    @field_validator("executor", mode="before")
    @classmethod
    def _executor_by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


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
        section = validate_section(ResourcesSection, value or {}, "resources")
        return cls.from_section(section)

    @classmethod
    def from_section(cls, section: ResourcesSection | None) -> Resources:
        if section is None:
            return cls()
        auto = section.gpus_per_trial == "auto"
        return cls(
            gpus_per_trial=None if auto else section.gpus_per_trial,
            cpus_per_trial=section.cpus_per_trial,
            processes_per_trial=section.processes_per_trial,
            auto_packing=auto,
        )

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
        section = validate_section(HeartbeatSection, value or {}, "heartbeat")
        return cls(interval=float(section.interval), grace_period=float(section.grace_period))


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
    """Validate the execution keys of a study file (each may be None: not given, or an already validated
    section)."""
    given = {
        "workers": workers,
        "executor": executor,
        "resources": resources,
        "trial_timeout": trial_timeout,
        "retry": retry,
        "heartbeat": heartbeat,
        "execution": execution,
    }
    keys = validate_section(
        ExecutionKeys, {k: v.model_dump() if isinstance(v, Section) else v for k, v in given.items()}
    )
    return execution_settings(keys)


def execution_settings(keys: ExecutionKeys) -> ExecutionSettings:
    """The settings of validated execution keys, with the checks that span several keys."""
    executor = keys.executor or ExecutorSection(name="local")
    fusing = keys.execution or FusingSection.model_validate({})
    heartbeat = keys.heartbeat or HeartbeatSection.model_validate({})
    settings = ExecutionSettings(
        workers=keys.workers,
        executor=executor.name,
        executor_options=executor.model_dump(exclude={"name"}, exclude_none=True),
        resources=Resources.from_section(keys.resources),
        trial_timeout=keys.trial_timeout,
        max_retries=keys.retry.max_retries if keys.retry else 0,
        heartbeat=HeartbeatSettings(
            interval=float(heartbeat.interval), grace_period=float(heartbeat.grace_period)
        ),
        fuse=fusing.fuse,
        group_size=fusing.group_size,
    )
    if settings.resources.auto_packing and settings.executor != "local":
        raise ConfigError(
            f"resources.gpus_per_trial: auto is applied by the local pool, not by {settings.executor}; give "
            f"gpus_per_trial as a number (0.25: four trials per GPU)"
        )
    if settings.fuse == "true" and not settings.in_process:
        raise ConfigError(FUSE_NEEDS_ONE_PROCESS)
    return settings
