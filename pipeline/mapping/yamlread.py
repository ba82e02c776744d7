"""Safe YAML reading for mapping files: plain data with the line of every key, nothing executed.

The file is composed into nodes with PyYAML's pure-Python composer (so every node keeps its line)
and turned into dicts, lists and scalars here, never by a YAML constructor. Refused outright:
anchors and aliases (no billion laughs, no cycles), every tag beyond the plain data types
(``!!python/object`` …), duplicate keys, nesting deeper than :data:`MAX_DEPTH`, files larger than
:data:`MAX_BYTES`. Scalars follow the YAML 1.2 core schema: only ``true``/``false`` are booleans
(``yes``, ``no``, ``on``, ``NO`` stay text: no Norway problem), numbers with a fraction are exact
:class:`~decimal.Decimal`, dates stay text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from pipeline.mapping.errors import MappingError

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
_STD = "tag:yaml.org,2002:"
Path_ = tuple[str | int, ...]


class YamlRefused(MappingError):
    """The file cannot be read as a mapping; ``errors`` lists every problem as ``file:line: …``."""


class _Stop(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Loader(Reader, Scanner, Parser, Composer, BaseResolver):
    """A composer with YAML 1.2 core scalars that refuses anchors, aliases and deep nesting."""

    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if self.check_event(AliasEvent):
            raise _Stop(line, "YAML aliases (*name) are not allowed: write the value out in full")
        if getattr(event, "anchor", None) is not None:
            raise _Stop(line, "YAML anchors (&name) are not allowed: write the value out in full")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Stop(line, f"nesting deeper than {MAX_DEPTH} levels is not allowed")
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?[0-9]+$", "-+0123456789"),
    (
        "float",
        r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9]+[eE][-+]?[0-9]+$",
        "-+.0123456789",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _Loader.add_implicit_resolver(_STD + _tag, re.compile(_pattern), list(_first))


@dataclass
class Document:
    """A mapping file as plain data, with the 1-based line of each key path."""

    data: dict[str, object]
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of ``path`` or of its nearest ancestor that has one (1 if none)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1


def read_yaml(path: Path, shown: str) -> Document:
    """Read ``path`` (named ``shown`` in messages) into a :class:`Document`."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise YamlRefused(
            [f"{shown}: {size} bytes is more than the {MAX_BYTES} a mapping may have"]
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise YamlRefused(
            [f"{shown}:{line}: not UTF-8 (byte offset {error.start}): save the file as UTF-8"]
        ) from None
    return parse_yaml(text, shown)


def parse_yaml(text: str, shown: str) -> Document:
    """Parse mapping-file text; every refusal is a :class:`YamlRefused` naming file and line."""
    root = _compose(text, shown)
    if root is None:
        raise YamlRefused(
            [
                f"{shown}: the file is empty; a mapping needs at least source, invoice_key, "
                "header and invoice_lines"
            ]
        )
    if not isinstance(root, MappingNode):
        raise YamlRefused(
            [
                f"{shown}:{root.start_mark.line + 1}: the document must be a mapping "
                f"(source: …, invoice_key: …, header: …), not {_kind(root)}"
            ]
        )
    builder = _Builder(shown)
    data = builder.value(root, ())
    if builder.errors:
        raise YamlRefused(builder.errors)
    assert isinstance(data, dict)
    return Document(data, builder.lines)


def _compose(text: str, shown: str) -> Node | None:
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except _Stop as stop:
        raise YamlRefused([f"{shown}:{stop.line}: {stop.message}"]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        what = " ".join(part for part in (error.context, error.problem) if part)
        raise YamlRefused([f"{shown}{line}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as error:
        raise YamlRefused([f"{shown}: YAML error: {error}"]) from None
    finally:
        loader.dispose()


def _kind(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the single value {str(node.value)[:40]!r}"


def _dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path)


class _Builder:
    """Turns nodes into plain data, recording lines and collecting every refusal."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.errors: list[str] = []
        self.lines: dict[Path_, int] = {}

    def error(self, node: Node, path: Path_, message: str) -> None:
        where = f" {_dotted(path)}" if path else ""
        self.errors.append(f"{self.shown}:{node.start_mark.line + 1}{where}: {message}")

    def value(self, node: Node, path: Path_) -> object:
        if not self._tag_ok(node, path):
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.value(item, (*path, index)))
            return items
        return self._scalar(node, path)

    def _tag_ok(self, node: Node, path: Path_) -> bool:
        allowed = {"map", "seq", "str", "int", "float", "bool", "null"}
        tag = node.tag or ""
        if tag.startswith(_STD) and tag[len(_STD) :] in allowed:
            return True
        shown = "!!" + tag[len(_STD) :] if tag.startswith(_STD) else tag
        self.error(node, path, f"YAML tag {shown!r} is not allowed: a mapping file holds data only")
        return False

    def _mapping(self, node: MappingNode, path: Path_) -> dict[str, object]:
        out: dict[str, object] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or not self._tag_ok(key_node, path):
                self.error(key_node, path, "keys must be plain text")
                continue
            key = str(key_node.value)
            here = (*path, key)
            if key in out:
                first = self.lines[here]
                self.error(key_node, here, f"duplicate key {key!r} (first at line {first})")
                continue
            self.lines[here] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, here)
        return out

    def _scalar(self, node: Node, path: Path_) -> object:
        text = str(node.value)
        kind = (node.tag or "")[len(_STD) :]
        readers: dict[str, Callable[[str], object]] = {
            "int": int,
            "float": Decimal,
            "bool": _boolean,
            "null": lambda _: None,
        }
        reader = readers.get(kind)
        if reader is None:
            return text
        try:
            return reader(text)
        except (ValueError, ArithmeticError):
            self.error(node, path, f"{text!r} is not a valid {kind}")
            return None


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(text)
    return text.lower() == "true"
