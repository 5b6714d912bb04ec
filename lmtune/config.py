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

from pydantic import Field, field_validator

from lmtune.checkpoints import CheckpointBudget
from lmtune.exceptions import ConfigError, LmtuneError
from lmtune.executors.settings import ExecutionKeys, ExecutionSettings, execution_settings
from lmtune.samplers import Sampler, sampler_from_config
from lmtune.schedulers.base import Scheduler
from lmtune.space import CategoricalDistribution, FloatDistribution, SearchSpace, coerce_number
from lmtune.storage import check_storage_url
from lmtune.strict_yaml import load_yaml, read_text
from lmtune.validation import Section, validate_section

__all__ = [
    "DEFAULT_STORAGE",
    "StudyFile",
    "StudySpec",
    "check_machine",
    "load_study_file",
    "resolve_storage_url",
]

DEFAULT_STORAGE = "sqlite:///lmtune.db"


MAX_STUDY_NAME = 200  # characters; the storage holds up to 512


class FinalEvaluationFile(Section):
    """``final_evaluation:``: re-run the top configurations with several seeds (or folds), then test once."""

    top_k: int = Field(3, gt=0, description="distinct best configurations to re-run")
    seeds: int | list[int] = Field(3, description="how many fresh seeds (1..n), or the list of seeds")
    folds: int | None = Field(None, ge=2, description="k-fold cross-validation instead of seeds")
    confidence: float = Field(0.95, gt=0, lt=1, description="level of the reported intervals")


class CheckpointsFile(Section):
    """``checkpoints:``: which trial checkpoints stay on disk."""

    keep_best: int = Field(3, ge=1, description="the best COMPLETE trials whose checkpoints are kept")
    max_bytes: int | None = Field(
        None, ge=0, description="a size limit of the finished trials' kept checkpoints, in bytes"
    )


class StudyFile(ExecutionKeys):
    """The schema of a study file. Unknown keys are errors; the execution keys are :class:`ExecutionKeys`."""

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
    checkpoints: CheckpointsFile | None = Field(
        None, description="{keep_best: 3, max_bytes: null}: which trial checkpoints stay on disk"
    )

    @field_validator("study")
    @classmethod
    def _study_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank; name the study, e.g. study: my-study")
        if len(value) > MAX_STUDY_NAME:
            raise ValueError(f"must be at most {MAX_STUDY_NAME} characters, but has {len(value)}; shorten it")
        if any(not ch.isprintable() for ch in value):
            raise ValueError(f"must be printable text without control characters, but got {value!r}")
        return value

    @field_validator("storage")
    @classmethod
    def _storage_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty; give a URL such as sqlite:///lmtune.db, or remove the key")
        return value


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
        raise ConfigError(f"objective: must be written module:function, but got {reference!r}")
    if str(base_dir) not in sys.path:  # after site-packages: a file there never shadows an installed package
        sys.path.append(str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:
        raise ConfigError(
            f"objective: module {module_name!r} called sys.exit({exc.code!r}) while being imported; "
            f'move that call under `if __name__ == "__main__":`'
        ) from None
    except Exception as exc:  # any import failure is the user's to fix
        raise ConfigError(
            f"objective: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"objective: module {module_name!r} has no function {attr!r}")
    return function


def read_yaml(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(f"study file {str(path)!r} does not exist or is not a file")
    data = load_yaml(read_text(path))
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
            raise ConfigError(f"preset: {exc}") from None
    if model.space is not None and not model.space:
        raise ConfigError(
            "space: is empty; give it parameters, or remove it to let the objective define them as it runs"
        )
    spec.update(model.space or {})
    if not spec:
        return None
    return SearchSpace.from_dict(spec)


def _check_griddable(space: SearchSpace) -> None:
    """``sampler: grid`` needs a finite list of values for every parameter."""
    for name, distribution in space.items():
        if isinstance(distribution, FloatDistribution) and distribution.step is None:
            try:
                distribution.grid_values()
            except ConfigError as exc:
                raise ConfigError(f"space.{name}: {exc} (sampler grid)") from None


def _check_training_params(task: Any, space: SearchSpace | None) -> None:
    """Each training value the file fixes or searches (``task.training``, the space's bounds and choices) must be
    one the training loop accepts, or every trial would fail with it."""
    from lmtune.nlp.hyperparameters import Hyperparameters

    training = dict(task.spec.training)

    def check(params: dict[str, Any], where: str) -> None:
        try:
            Hyperparameters.from_params(params)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:  # a text where a number belongs
            raise ConfigError(
                f"{where}: a value has the wrong type ({exc}); write numbers as numbers"
            ) from None

    check(training, "task.training")
    for name, distribution in (space or {}).items():
        values = (
            distribution.choices
            if isinstance(distribution, CategoricalDistribution)
            else (distribution.low, distribution.high)  # type: ignore[attr-defined]
        )
        for value in values:
            check({**training, name: value}, f"space.{name}")


def _load_task(spec: Mapping[str, Any], base_dir: Path) -> Any:
    try:
        from lmtune.nlp.task import load_task
    except ImportError as exc:
        raise ConfigError(f"task: needs the NLP extra: pip install 'lmtune[nlp]' ({exc})") from None
    return load_task(spec, base_dir)


def _trackers(model: StudyFile) -> list[Any]:
    from lmtune.integrations.trackers import parse_trackers

    return parse_trackers(model.trackers)


def _checkpoint_budget(section: CheckpointsFile | None) -> CheckpointBudget:
    """The study file's ``checkpoints:`` section; by default the three best trials' checkpoints are kept."""
    return CheckpointBudget(**(section or CheckpointsFile()).model_dump())


def build_spec(data: Mapping[str, Any], path: Path, text: str = "") -> StudySpec:
    """Validate parsed study-file data; ``path`` locates relative paths."""
    model = validate_section(StudyFile, data)
    base_dir = path.parent.resolve()
    if [model.objective, model.task, model.program].count(None) != 2:
        raise ConfigError("give exactly one of `objective: module:function`, `task:` or `program:`")
    task = _load_task(model.task, base_dir) if model.task is not None else None
    direction = (
        model.direction or (getattr(task, "direction", None) if task is not None else None) or "minimize"
    )
    space = _space(model, task)
    if task is not None:
        _check_training_params(task, space)
    if model.program is not None:
        from lmtune.program.spec import program_from_config

        objective: Callable[..., Any] = program_from_config(model.program, space, base_dir)
    else:
        objective = task if task is not None else import_objective(model.objective or "", base_dir)
    sampler_config = dict(model.sampler or {})
    if sampler_config:
        if "name" not in sampler_config:
            raise ConfigError("sampler.name: required but missing, e.g. sampler: {name: random, seed: 0}")
        sampler = sampler_from_config(sampler_config, n_trials=model.n_trials)
    else:
        sampler = sampler_from_config({"name": "auto"}, n_trials=model.n_trials)
    if sampler_config.get("name") == "grid" and space is not None:
        _check_griddable(space)
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
                raise ConfigError(f"enqueue[{i}]: {exc}") from None
        enqueue.append(params)
    provenance = {"study_file": str(path.resolve()), "study_file_text": text}
    if task is not None and hasattr(task, "provenance"):
        provenance["task"] = task.provenance()
    storage = resolve_storage_url(model.storage, base_dir) if model.storage else DEFAULT_STORAGE
    check_storage_url(storage)
    execution = execution_settings(model)
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


def check_machine(spec: StudySpec) -> None:
    """What the study asks of this machine is there: CUDA for ``task.device: cuda``, and as many GPUs as one trial
    takes for the local pool. (Not part of :func:`build_spec`: a trial process sees only its own GPUs.)"""
    resources = spec.execution.resources
    gpus = resources.gpus_per_trial
    if spec.execution.executor == "local" and gpus:
        from lmtune.executors.gpus import detect_gpus

        ids, found_by = detect_gpus()
        if len(ids) < max(gpus, 1):
            raise ConfigError(
                f"resources.gpus_per_trial: {gpus:g} GPUs per trial, but this machine has {len(ids)} "
                f"({found_by}); lower gpus_per_trial, or remove it to run on the CPU"
            )
    if spec.task is not None and spec.task.spec.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "task.device: cuda, but this machine has no usable CUDA GPU; use device: auto (the GPU when "
                "there is one) or cpu"
            )


def load_study_file(path: str | Path) -> StudySpec:
    """Read and validate a study file; a :class:`ConfigError` message starts with the file's path."""
    path = Path(path)
    try:
        data = read_yaml(path)
        return build_spec(data, path, read_text(path))
    except LmtuneError as exc:
        raise type(exc)(f"{path}: {exc}") from None
