"""The study file's ``program:`` section, validated before anything runs.

``program: {command: [python, train.py, --lr, "{learning_rate}"], metric: eval_accuracy}``; the command may also be
one string (split like a shell does). What can be checked without running the script is checked here, each error
naming the key: fields that name no parameter, a program not on ``PATH``, a script file that does not exist, a
working folder that does not exist.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lmtune.exceptions import ConfigError
from lmtune.program.command import CommandTemplate
from lmtune.program.objective import PYTHON_NAMES, ProgramObjective
from lmtune.space import SearchSpace

__all__ = ["ProgramFile", "program_from_config", "program_objective"]

SCRIPT_SUFFIXES = (".py", ".sh", ".bash", ".R", ".jl", ".pl", ".rb", ".js", ".lua")


class ProgramFile(BaseModel):
    """The schema of ``program:``. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] | str = Field(description="the script and its arguments, with {parameter} fields")
    metric: str = Field(description="the key of the JSON lines (or what lmtune.report sends) to optimise")
    cwd: str | None = Field(
        None, description="the working folder, relative to the study file (default: its folder)"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="environment variables added for the script"
    )
    grace_period: float = Field(
        10.0, gt=0, description="seconds between SIGTERM and SIGKILL when a trial stops"
    )
    report_timeout: float | None = Field(
        None, gt=0, description="seconds without a report after which it fails"
    )
    logs: str | None = Field(
        None, description="folder for each trial's stdout and stderr, relative to the file"
    )

    @field_validator("metric")
    @classmethod
    def _metric_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name the metric the script reports, e.g. eval_accuracy")
        return value.strip()


def _validation_message(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(["program", *(str(part) for part in error["loc"])])
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown key `{where}`; allowed keys: {', '.join(ProgramFile.model_fields)}")
        elif error["type"] == "missing":
            lines.append(f"`{where}` is required")
        else:
            lines.append(f"`{where}`: {error['msg']}, but got {error.get('input')!r}")
    return "; ".join(lines)


def _arguments(command: list[str] | str) -> list[str]:
    if isinstance(command, list):
        return command
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"`program.command`: {exc} in {command!r}") from None


def _check_files(template: CommandTemplate, cwd: Path) -> None:
    """The program must be found, and every script file the command names must exist."""
    program = template.arguments[0]
    if program not in PYTHON_NAMES and shutil.which(program, path=os.environ.get("PATH")) is None:
        local = cwd / program
        if not (local.is_file() and os.access(local, os.X_OK)):
            raise ConfigError(
                f"`program.command[0]`: cannot find {program!r} on PATH or as an executable file in {cwd}"
            )
    for i, (argument, fields) in enumerate(zip(template.arguments, template.fields, strict=True)):
        if i == 0 or fields or argument.startswith("-") or not argument.endswith(SCRIPT_SUFFIXES):
            continue
        if not (cwd / argument).is_file():
            raise ConfigError(
                f"`program.command[{i}]`: the script {argument!r} does not exist in {cwd}; give its path "
                f"relative to `program.cwd` (default: the study file's folder)"
            )


def program_from_config(
    config: Mapping[str, Any], space: SearchSpace | None, base_dir: Path
) -> ProgramObjective:
    """Validate a ``program:`` section against the study's ``space`` (paths relative to ``base_dir``)."""
    try:
        model = ProgramFile.model_validate(dict(config))
    except ValidationError as exc:
        raise ConfigError(_validation_message(exc)) from None
    if space is None:
        raise ConfigError(
            "`program` passes each trial's parameters to the script, so the study needs a `space:` (or `preset:`)"
        )
    cwd = (base_dir / model.cwd).resolve() if model.cwd else base_dir.resolve()
    if not cwd.is_dir():
        raise ConfigError(f"`program.cwd`: the folder {str(cwd)!r} does not exist")
    template = CommandTemplate.parse(_arguments(model.command), list(space))
    _check_files(template, cwd)
    return ProgramObjective(
        command=template,
        metric=model.metric,
        cwd=str(cwd),
        env=dict(model.env),
        grace_period=model.grace_period,
        report_timeout=model.report_timeout,
        logs=str((base_dir / model.logs).resolve()) if model.logs else None,
    )


def program_objective(
    command: Sequence[str] | str,
    metric: str,
    space: SearchSpace | Mapping[str, Any],
    *,
    cwd: str | Path | None = None,
    **options: Any,
) -> ProgramObjective:
    """The Python form of a ``program:`` section: an objective for ``study.optimize`` over ``space``."""
    if not isinstance(space, SearchSpace):
        space = SearchSpace.from_dict(space)
    config = {
        "command": list(command) if not isinstance(command, str) else command,
        "metric": metric,
        **options,
    }
    return program_from_config(config, space, Path(cwd) if cwd is not None else Path.cwd())
