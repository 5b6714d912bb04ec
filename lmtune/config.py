"""The study file: a YAML description of a study, validated into a :class:`StudySpec`.

The file is data: nothing in it is evaluated. An objective is named as ``module:function`` and imported; a
``task:`` section (language-model fine-tuning) replaces it. Every error names the file, the field, the bad value
and the fix.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lmtune.checkpoints import CheckpointBudget
from lmtune.exceptions import ConfigError, LmtuneError
from lmtune.executors.settings import ExecutionSettings, execution_from_config
from lmtune.samplers import Sampler, sampler_from_config
from lmtune.schedulers.base import Scheduler
from lmtune.space import CategoricalDistribution, SearchSpace, coerce_number
from lmtune.storage import check_storage_url

__all__ = ["DEFAULT_STORAGE", "StudyFile", "StudySpec", "load_study_file", "resolve_storage_url"]

DEFAULT_STORAGE = "sqlite:///lmtune.db"


class FinalEvaluationFile(BaseModel):
    """``final_evaluation:``: re-run the top configurations with several seeds (or folds), then test once."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(3, gt=0, description="distinct best configurations to re-run")
    seeds: int | list[int] = Field(3, description="how many fresh seeds (1..n), or the list of seeds")
    folds: int | None = Field(None, ge=2, description="k-fold cross-validation instead of seeds")
    confidence: float = Field(0.95, gt=0, lt=1, description="level of the reported intervals")


class StudyFile(BaseModel):
    """The schema of a study file. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    study: str = Field(description="the study's name in its storage")
    storage: str | None = Field(None, description="a storage URL; default sqlite:///lmtune.db")
    direction: Literal["minimize", "maximize"] | None = None
    objective: str | None = Field(None, description="module:function taking a trial")
    task: dict[str, Any] | None = Field(None, description="a language-model task, instead of `objective`")
    program: dict[str, Any] | None = Field(
        None, description="{command: [...], metric: ...}: run a script per trial, instead of `objective`"
    )
    space: dict[str, Any] | None = None
    preset: str | None = Field(
        None, description="a named search space; `space:` entries override its parameters"
    )
    sampler: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    n_trials: int | None = Field(
        None, gt=0, description="finished (COMPLETE or PRUNED) trials the study should hold"
    )
    timeout: float | None = Field(None, gt=0, description="seconds after which a run starts no new trial")
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    max_failed_trials: int = Field(10, gt=0)
    trackers: list[str | dict[str, Any]] | dict[str, Any] | None = Field(
        None, description="experiment trackers: tensorboard, mlflow, wandb (names, or {name: {options}})"
    )
    final_evaluation: FinalEvaluationFile | None = None
    workers: int | None = Field(None, description="trials at once, each in its own process")
    executor: str | dict[str, Any] | None = Field(
        None, description="local (default) or {name: ray, address: auto}"
    )
    resources: dict[str, Any] | None = Field(
        None, description="per trial: gpus_per_trial, processes_per_trial, ..."
    )
    trial_timeout: float | None = Field(None, description="seconds after which a trial is killed and failed")
    retry: dict[str, Any] | None = Field(
        None, description="{max_retries: N}: re-run trials whose worker was lost"
    )
    heartbeat: dict[str, Any] | None = Field(None, description="{interval: 5, grace_period: 30}, in seconds")
    execution: dict[str, Any] | None = Field(
        None, description="{fuse: auto|true|false, group_size: N}: train a task's trials in fused groups"
    )
    checkpoints: dict[str, Any] | None = Field(
        None, description="{keep_best: 3, max_bytes: null}: which trial checkpoints stay on disk"
    )

    @field_validator("study")
    @classmethod
    def _study_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


@dataclass
class StudySpec:
    """A validated study file, ready to run."""

    name: str
    storage: str
    direction: str
    objective: Callable[..., Any]
    space: SearchSpace | None
    sampler: Sampler
    scheduler: Scheduler | None
    n_trials: int | None
    timeout: float | None
    enqueue: list[dict[str, Any]]
    max_failed_trials: int
    path: Path
    text: str
    task: Any = None
    provenance: dict[str, Any] = field(default_factory=dict)
    trackers: list[Any] = field(default_factory=list)
    final_evaluation: dict[str, Any] | None = None
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    checkpoint_budget: CheckpointBudget = field(default_factory=CheckpointBudget)


def _format_validation_error(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(StudyFile.model_fields)
            lines.append(f"unknown key `{where}`; allowed keys: {allowed}")
        elif error["type"] == "missing":
            lines.append(f"`{where}` is required")
        else:
            lines.append(f"`{where}`: {error['msg']}, but got {error.get('input')!r}")
    return "; ".join(lines)


def resolve_storage_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path absolute against ``base_dir`` (other URLs are returned unchanged)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and url != "sqlite:///:memory:":
        path = Path(url[len(prefix) :])
        if not path.is_absolute():
            return prefix + str((base_dir / path).resolve())
    return url


def import_objective(reference: str, base_dir: Path) -> Callable[..., Any]:
    """Import ``module:function``; modules next to the study file are importable."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"`objective` must be written module:function, but got {reference!r}")
    if str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is the user's to fix
        raise ConfigError(
            f"`objective`: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"`objective`: module {module_name!r} has no function {attr!r}")
    return function


def read_yaml(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(f"study file {str(path)!r} does not exist or is not a file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError("not a UTF-8 text file") from None
    if data is None:
        raise ConfigError("the file is empty; it needs at least `study:` and `objective:` (or `task:`)")
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"the top level must be a mapping of keys such as `study:`, but got {type(data).__name__}"
        )
    return data


def _space(model: StudyFile, task: Any) -> SearchSpace | None:
    spec: dict[str, Any] = {}
    if model.preset is not None:
        from lmtune.nlp.presets import get_preset

        try:
            spec.update(get_preset(model.preset))
        except KeyError as exc:
            raise ConfigError(f"`preset`: {exc}") from None
    spec.update(model.space or {})
    if not spec:
        return None
    return SearchSpace.from_dict(spec)


def _load_task(spec: Mapping[str, Any], base_dir: Path) -> Any:
    try:
        from lmtune.nlp.task import load_task
    except ImportError as exc:
        raise ConfigError(f"`task` needs the NLP extra: pip install 'lmtune[nlp]' ({exc})") from None
    return load_task(spec, base_dir)


def _trackers(model: StudyFile) -> list[Any]:
    from lmtune.integrations.trackers import parse_trackers

    return parse_trackers(model.trackers)


def _checkpoint_budget(config: Mapping[str, Any] | None) -> CheckpointBudget:
    """The study file's ``checkpoints:`` section; by default the three best trials' checkpoints are kept."""
    config = dict(config or {})
    unknown = sorted(set(config) - {"keep_best", "max_bytes"})
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in `checkpoints`; allowed: keep_best, max_bytes")
    return CheckpointBudget(**config)


def build_spec(data: Mapping[str, Any], path: Path, text: str = "") -> StudySpec:
    """Validate parsed study-file data; ``path`` locates relative paths."""
    try:
        model = StudyFile.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None
    base_dir = path.parent.resolve()
    if [model.objective, model.task, model.program].count(None) != 2:
        raise ConfigError("give exactly one of `objective: module:function`, `task:` or `program:`")
    task = _load_task(model.task, base_dir) if model.task is not None else None
    direction = (
        model.direction or (getattr(task, "direction", None) if task is not None else None) or "minimize"
    )
    space = _space(model, task)
    if model.program is not None:
        from lmtune.program.spec import program_from_config

        objective: Callable[..., Any] = program_from_config(model.program, space, base_dir)
    else:
        objective = task if task is not None else import_objective(model.objective or "", base_dir)
    sampler_config = dict(model.sampler or {})
    if sampler_config:
        if "name" not in sampler_config:
            raise ConfigError("`sampler.name` is required, e.g. sampler: {name: random, seed: 0}")
        sampler = sampler_from_config(sampler_config, n_trials=model.n_trials)
    else:
        sampler = sampler_from_config({"name": "auto"}, n_trials=model.n_trials)
    scheduler = None
    if model.scheduler is not None:
        from lmtune.schedulers import scheduler_from_config  # type: ignore[attr-defined]

        scheduler = scheduler_from_config(dict(model.scheduler))
    enqueue = []
    for i, params in enumerate(model.enqueue):
        if space is not None:
            params = {
                k: coerce_number(v) if k in space and not isinstance(space[k], CategoricalDistribution) else v
                for k, v in params.items()
            }
            try:
                params = space.validate(params, partial=True)
            except ConfigError as exc:
                raise ConfigError(f"`enqueue[{i}]`: {exc}") from None
        enqueue.append(params)
    provenance = {"study_file": str(path.resolve()), "study_file_text": text}
    if task is not None and hasattr(task, "provenance"):
        provenance["task"] = task.provenance()
    storage = resolve_storage_url(model.storage, base_dir) if model.storage else DEFAULT_STORAGE
    check_storage_url(storage)
    execution = execution_from_config(
        workers=model.workers,
        executor=model.executor,
        resources=model.resources,
        trial_timeout=model.trial_timeout,
        retry=model.retry,
        heartbeat=model.heartbeat,
        execution=model.execution,
    )
    if execution.fuse == "true" and task is None:
        raise ConfigError(
            "`execution.fuse: true` fuses the trials of a `task:` study; an `objective:` is run as "
            "it is, so use `fuse: auto` or remove it"
        )
    return StudySpec(
        name=model.study,
        storage=storage,
        direction=direction,
        objective=objective,
        space=space,
        sampler=sampler,
        scheduler=scheduler,
        n_trials=model.n_trials,
        timeout=model.timeout,
        enqueue=enqueue,
        max_failed_trials=model.max_failed_trials,
        path=path,
        text=text,
        task=task,
        provenance=provenance,
        trackers=_trackers(model),
        final_evaluation=model.final_evaluation.model_dump() if model.final_evaluation else None,
        execution=execution,
        checkpoint_budget=_checkpoint_budget(model.checkpoints),
    )


def load_study_file(path: str | Path) -> StudySpec:
    """Read and validate a study file; a :class:`ConfigError` message starts with the file's path."""
    path = Path(path)
    try:
        data = read_yaml(path)
        return build_spec(data, path, path.read_text())
    except LmtuneError as exc:
        raise type(exc)(f"{path}: {exc}") from None
