"""The study file's validation vocabulary: a strict base for every section and one way to word its errors.

Each section of a study file (``heartbeat:``, ``resources:``, ``task:``, ...) is a pydantic model derived from
:class:`Section`: unknown keys are errors, YAML booleans are not numbers, numbers are not strings, NaN and infinity
are refused. :func:`validate_section` turns a pydantic error into :class:`~lmtune.exceptions.ConfigError` lines of
the one form ``section.field: message, but got VALUE``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lmtune.exceptions import ConfigError

__all__ = ["Section", "describe_validation_error", "validate_section"]

M = TypeVar("M", bound=BaseModel)
_SHOWN_CHARS = 80


class Section(BaseModel):
    """Base of every study-file section: strict types, no unknown keys, finite numbers, immutable once read."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold (``X | None``, ``str | X``, ``list[X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` (the path of a mapping) inside ``model``."""
    current = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        current = [
            inner
            for m in current
            if part in m.model_fields
            for inner in _models_in(m.model_fields[part].annotation)
        ]
    return sorted({name for m in current for name in m.model_fields})


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def describe_validation_error(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> str:
    """One ``section.field: message`` line per error, joined by ``; `` (the field path starts with ``prefix``)."""
    lines = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        where = ".".join(p for p in (prefix, path) if p) or prefix or "(top level)"
        where = where.replace(".[", "[")
        message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(_keys_at(model, loc[:-1]))
            lines.append(f"{where}: unknown key; remove it or fix its spelling (allowed: {allowed})")
        elif error["type"] == "missing":
            lines.append(f"{where}: required but missing")
        elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
            keys = _keys_at(model, loc)
            wanted = f"a mapping with keys {', '.join(keys)}" if keys else "a mapping"
            lines.append(f"{where}: must be {wanted}, but got {_shown(error.get('input'))}")
        elif isinstance(error.get("input"), Mapping) or error["type"] == "value_error":
            lines.append(f"{where}: {message}")
        else:
            lines.append(f"{where}: {message}, but got {_shown(error.get('input'))}")
    return "; ".join(dict.fromkeys(lines))


def validate_section(model: type[M], value: Any, prefix: str = "") -> M:
    """``value`` validated as ``model``; a :class:`ConfigError` naming each bad field otherwise."""
    if not isinstance(value, Mapping):
        name = prefix or "the study file"
        raise ConfigError(
            f"{name} must be a mapping with keys {', '.join(model.model_fields)}, but got {_shown(value)}"
        )
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model, prefix)) from None
