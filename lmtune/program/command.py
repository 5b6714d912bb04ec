"""The command line of one trial: a template with ``{parameter}`` fields, or the parameters as ``--name value``.

``[python, train.py, --lr, "{learning_rate}"]`` puts each trial's value in place of its field (a format spec such
as ``{learning_rate:.2e}`` is applied; ``{{`` and ``}}`` are literal braces). A command with no field gets every
active parameter appended as ``--name value``. Besides the space's parameters, ``{trial_number}`` and
``{checkpoint_dir}`` (the trial's own folder, created on first use) may be used. An argument naming a parameter
that is inactive in a trial (a conditional one) is left out, together with the option just before it
(``--momentum {momentum}`` disappears as a pair).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lmtune.exceptions import ConfigError

__all__ = ["RESERVED_FIELDS", "CommandTemplate", "format_value"]

RESERVED_FIELDS = ("trial_number", "checkpoint_dir")
_FORMATTER = string.Formatter()


def format_value(value: Any) -> str:
    """A parameter as a command-line argument: strings as they are, other values as JSON (``true``, ``1e-05``)."""
    return value if isinstance(value, str) else json.dumps(value)


def _fields(argument: str, where: str) -> list[str]:
    try:
        parsed = list(_FORMATTER.parse(argument))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc} in {argument!r}; write a literal brace as {{{{ or }}}}") from None
    names = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ConfigError(
                f"{where}: {{{name}}} in {argument!r} is not a parameter name; write {{learning_rate}}, or a "
                f"literal brace as {{{{ or }}}}"
            )
        names.append(name)
    return names


@dataclass(frozen=True)
class CommandTemplate:
    """The validated command of a program objective; :meth:`render` gives one trial's argument list."""

    arguments: tuple[str, ...]
    fields: tuple[tuple[str, ...], ...]  # the field names of each argument

    @classmethod
    def parse(
        cls, arguments: Sequence[str], known: Sequence[str], where: str = "program.command"
    ) -> CommandTemplate:
        """Check every field against the ``known`` parameter names (and the reserved ones)."""
        if not arguments:
            raise ConfigError(f"`{where}` is empty; give the script to run, e.g. [python, train.py]")
        fields = tuple(tuple(_fields(argument, f"`{where}[{i}]`")) for i, argument in enumerate(arguments))
        allowed = set(known) | set(RESERVED_FIELDS)
        for i, names in enumerate(fields):
            for name in names:
                if name not in allowed:
                    raise ConfigError(
                        f"`{where}[{i}]` names {{{name}}}, which is not a parameter of `space:`; the parameters "
                        f"are {', '.join(sorted(known)) or 'none'} (and {', '.join(RESERVED_FIELDS)})"
                    )
        if fields[0]:
            raise ConfigError(f"`{where}[0]` is the program to run and cannot hold a field: {arguments[0]!r}")
        return cls(tuple(arguments), fields)

    @property
    def is_template(self) -> bool:
        return any(self.fields)

    def render(self, params: Mapping[str, Any], reserved: Callable[[str], Any]) -> list[str]:
        """The arguments for a trial with ``params`` (its active parameters); ``reserved(name)`` gives the value of
        a reserved field and is called only for fields the command uses."""
        if not self.is_template:
            pairs = [[f"--{name}", format_value(value)] for name, value in params.items()]
            return [*self.arguments, *(argument for pair in pairs for argument in pair)]
        rendered: dict[int, str] = {}
        for i, (argument, names) in enumerate(zip(self.arguments, self.fields, strict=True)):
            if any(name not in params and name not in RESERVED_FIELDS for name in names):
                if i > 1 and self._is_option(i - 1):
                    rendered.pop(i - 1, None)  # the option whose value this was
                continue
            values = {name: params[name] if name in params else reserved(name) for name in names}
            rendered[i] = _FORMATTER.vformat(argument, (), _Formatted(values))
        return list(rendered.values())

    def _is_option(self, i: int) -> bool:
        return self.arguments[i].startswith("-") and not self.fields[i]


class _Formatted(dict):
    """Field values for ``str.format``: booleans and other non-strings as JSON unless a format spec is given."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return _Argument(value)


class _Argument:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec) if spec else format_value(self.value)
