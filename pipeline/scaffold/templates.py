"""The ERP templates under ``mappings/templates/``, recognised from a database's tables or an
export's columns, and rewritten as a draft for the place it will live.

Nothing is listed by hand: a template is any ``<folder>/<name>.yaml`` there. A SQL template is
recognised when the database has every table its query reads; a file template when the file(s)
have every column its mapping reads (ignoring case). A template marks what it cannot know with a
comment ``# mapping init asks: <question>``: the draft turns that value into a TODO mark.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path

from pipeline.extract.specs import SqlSourceSpec
from pipeline.mapping.loader import TODO_MARK, load_mapping
from pipeline.mapping.refs import needed_columns

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "mappings" / "templates"
ASKS = "# mapping init asks:"
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][\w$#]*(?:\.[A-Za-z_][\w$#]*)?)", re.IGNORECASE)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_ASKED = re.compile(
    r"^(?P<indent>\s*)(?P<key>[\w.]+):\s*(?P<value>.*?)\s*"
    + re.escape(ASKS)
    + r"\s*(?P<question>.*)$"
)


@dataclass(frozen=True)
class Template:
    """One template: its mapping file, its query (SQL), and what recognises it."""

    name: str
    mapping: Path
    query: Path | None = None
    tables: tuple[str, ...] = ()
    columns: tuple[tuple[str, ...], ...] = ()  # per file source: the columns it must have

    @property
    def folder(self) -> Path:
        """The template's folder (its README.md is there)."""
        return self.mapping.parent


@functools.cache
def templates(root: Path = TEMPLATES_DIR) -> tuple[Template, ...]:
    """Every template under ``root``, by name."""
    return tuple(_template(path) for path in sorted(root.glob("*/*.yaml")))


def _template(path: Path) -> Template:
    spec = load_mapping(path)
    if isinstance(spec.source, SqlSourceSpec):
        query = path.parent.parent / spec.source.query
        return Template(spec.name, path, query, tables=tables_of(query.read_text("utf-8")))
    if spec.lines_source is None:
        return Template(spec.name, path, columns=(tuple(needed_columns(spec, "header")),))
    header = needed_columns(spec, "header")
    lines = [c for c in needed_columns(spec, "lines") if c not in header or c == spec.line_key]
    return Template(spec.name, path, columns=(tuple(header), tuple(lines)))


def tables_of(query: str) -> tuple[str, ...]:
    """The tables a query reads (after FROM and JOIN, comments left out), in order."""
    code = _COMMENTS.sub(" ", query)
    return tuple(dict.fromkeys(match.group(1) for match in _TABLE.finditer(code)))


def for_tables(names: Iterable[str]) -> Template | None:
    """The SQL template whose tables are all among ``names`` (the one reading most tables)."""
    present = {name.casefold() for name in names}
    fitting = [
        t for t in templates()
        if t.tables and {table.split(".")[-1].casefold() for table in t.tables} <= present
    ]  # fmt: skip
    return max(fitting, key=lambda t: len(t.tables), default=None)


def for_files(columns: Sequence[Sequence[str]]) -> tuple[Template, tuple[int, ...]] | None:
    """The file template whose sources' columns the files have, and which file feeds which
    source (``(1, 0)``: the second file is the header source)."""
    for template in templates():
        if len(template.columns) != len(columns):
            continue
        for order in permutations(range(len(columns))):
            if all(
                _has(columns[index], wanted)
                for index, wanted in zip(order, template.columns, strict=True)
            ):
                return template, order
    return None


def _has(columns: Sequence[str], wanted: Sequence[str]) -> bool:
    return {c.casefold() for c in wanted} <= {c.casefold() for c in columns}


def qualified(query: str, tables: Sequence[str], schema: str) -> str:
    """``query`` with each of ``tables`` after FROM/JOIN prefixed by ``schema.``."""
    names = {table.casefold() for table in tables}

    def prefix(match: re.Match[str]) -> str:
        table = match.group(1)
        if table.casefold() not in names:
            return match.group(0)
        return match.group(0)[: match.start(1) - match.start(0)] + f"{schema}.{table}"

    return _TABLE.sub(prefix, query)


def asked(text: str) -> tuple[str, list[str]]:
    """The template text with every ``# mapping init asks:`` value replaced by a TODO mark (a
    comment with the question above it), and the questions."""
    out, questions = [], []
    for line in text.splitlines():
        found = _ASKED.match(line)
        if found is None:
            out.append(line)
            continue
        indent, key, question = found["indent"], found["key"], found["question"]
        questions.append(f"{key}: {question}")
        out.append(f"{indent}# {TODO_MARK}: {question}")
        out.append(f'{indent}{key}: "{TODO_MARK}: {question.replace(chr(34), chr(39))}"')
    return "\n".join(out) + "\n", questions


def with_value(text: str, block: str, key: str, value: str) -> str:
    """``text`` with ``key:`` inside the top-level ``block:`` set to ``value`` (a YAML scalar)."""
    lines = text.splitlines()
    inside = False
    for index, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.split(":", 1)[0] == block
            continue
        stripped = line.strip()
        if inside and stripped.startswith(f"{key}:"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[index] = f"{indent}{key}: {value}"
            return "\n".join(lines) + "\n"
    raise ValueError(f"no {block}.{key} in the template")
