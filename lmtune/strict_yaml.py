"""Reading a study file's YAML strictly, so that what runs is what the file says.

Plain ``yaml.safe_load`` lets a later duplicate key win silently, reads ``yes``/``no``/``on``/``off`` as booleans
(``n_trials: yes`` became one trial), recurses once per nesting level (a deeply nested file ends in
RecursionError) and expands aliases by reference, so a few hundred bytes of nested aliases describe billions of
values that validation then walks. Here only ``true``/``false`` are booleans and ``1e-5`` is a number (as in
YAML 1.2), a duplicate key is an error, and the file's size, nesting depth and size after alias expansion are
bounded.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from lmtune.exceptions import ConfigError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "load_yaml", "read_text", "utf16_or_32"]

MAX_BYTES = 1_000_000  # a study file is a few kilobytes; a data file is named, never inlined
MAX_DEPTH = 50  # nesting levels of mappings and lists
MAX_VALUES = 100_000  # values after alias expansion

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_EXPONENT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


def _line(node_or_mark: Any) -> str:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return f"line {mark.line + 1}"


class _StrictLoader(yaml.SafeLoader):
    """A safe loader with YAML 1.2 booleans, no duplicate keys, and bounded depth and expanded size."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._values: dict[int, int] = {}  # id(node) -> values it stands for once aliases are expanded

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError(
                    f"the file nests deeper than {MAX_DEPTH} levels at {_line(self.peek_event())}; "
                    f"a study file needs only a few"
                )
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if id(node) not in self._values:  # an alias is counted again by its parent, at its full size
            self._values[id(node)] = 1 + sum(self._values.get(id(child), 1) for child in _children(node))
        if self._values[id(node)] > MAX_VALUES:
            raise ConfigError(
                f"the file stands for more than {MAX_VALUES} values once its aliases (*name) are expanded "
                f"(at {_line(node)}); write the values out or use fewer aliases"
            )
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:
                raise ConfigError(
                    f"a mapping key must be a plain value, but got {key!r} at {_line(key_node)}"
                ) from None
            if first is not key_node:
                raise ConfigError(
                    f"duplicate key {key!r} at {_line(key_node)} (first at {_line(first)}); keep one of them"
                )
        return super().construct_mapping(node, deep=deep)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


# YAML 1.1's yes/no/on/off/y/n stay strings: only true and false are booleans.
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
# 1e-5 is a number (YAML 1.1 wants a dot in it and reads a string).
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """Parse one YAML document strictly; :class:`ConfigError` names the line and the fix."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise ConfigError(
            f"the file is larger than {MAX_BYTES // 1000} kB; a study file names its data files "
            f"instead of holding data"
        )
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError("the file nests too deeply; a study file needs only a few levels") from None
    finally:
        loader.dispose()


def utf16_or_32(data: bytes) -> str | None:
    """The encoding a byte-order mark (or the NUL bytes of ASCII text) shows, if UTF-16 or UTF-32."""
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return name
    head = data[:200]
    return "utf-16" if len(head) >= 4 and head.count(0) >= len(head) // 3 else None


def read_text(path: Path) -> str:
    """A text file's content as UTF-8 (a BOM is dropped); a file in another encoding is a ConfigError saying how
    to convert it."""
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"the file is larger than {MAX_BYTES // 1000} kB; a study file names its data files "
            f"instead of holding data"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        encoding = utf16_or_32(data) or "latin1"
        raise ConfigError(
            f"not UTF-8 text (byte 0x{data[exc.start : exc.start + 1].hex()} at offset {exc.start}); save it as "
            f"UTF-8, e.g. `iconv -f {encoding} -t utf-8 {path.name} > fixed{path.suffix}`"
        ) from None
