"""Drafts of a mapping (and its query) from a database or export files, and writing them.

A draft starts from an ERP template when the source is one (:mod:`.templates`), otherwise from
the columns matched to AppZen fields (:mod:`.matching`). Its paths are written for where it will
live: ``<out>/<name>.yaml`` reads ``<out>/<name>.sql`` or the export as ``<path>`` relative to
``<out>``'s parent (the mapping's project directory), so ``mapping check`` runs it as written.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.mapping.loader import TODO_MARK
from pipeline.mapping.spec import default_name
from pipeline.scaffold import inspect_db, templates
from pipeline.scaffold.errors import InitError
from pipeline.scaffold.inspect_file import FileShape, inspect_file
from pipeline.scaffold.matching import Candidate, Match, Rows, assign
from pipeline.scaffold.profile import profile
from pipeline.scaffold.query import Layout, QueryParts, Selected, plan, render, select_list
from pipeline.scaffold.render import DraftInput, Rendered, scalar
from pipeline.scaffold.render import render as render_yaml
from pipeline.scaffold.targets import HEADER, KEY, LINES, WATERMARK
from pipeline.settings import mask_url

SCHEMA_FILE = templates.TEMPLATES_DIR.parent / "mapping.schema.json"
TARGETS = (KEY, WATERMARK, *HEADER, *LINES)


@dataclass(frozen=True)
class Target:
    """Where a draft goes: ``<out>/<name>.yaml`` (and ``.sql``)."""

    out: Path
    name: str

    @property
    def mapping(self) -> Path:
        """The mapping file."""
        return self.out / f"{self.name}.yaml"

    @property
    def query(self) -> Path:
        """The query file beside it."""
        return self.out / f"{self.name}.sql"

    @property
    def query_ref(self) -> str:
        """The query as the mapping names it (relative to the project directory)."""
        return f"{self.out.resolve().name}/{self.name}.sql"

    def file_ref(self, path: Path) -> str:
        """An export file as the mapping names it: relative to the project directory when it is
        inside it, else absolute."""
        project = self.out.resolve().parent
        resolved = path.resolve()
        if resolved.is_relative_to(project):
            return resolved.relative_to(project).as_posix()
        return resolved.as_posix()

    def schema_comment(self) -> str | None:
        """The editor's schema line, relative to the mapping file (None outside the project
        holding the schema)."""
        project = SCHEMA_FILE.parent.parent
        if not SCHEMA_FILE.exists() or not self.out.resolve().is_relative_to(project):
            return None
        relative = os.path.relpath(SCHEMA_FILE, self.out.resolve())
        return f"# yaml-language-server: $schema={Path(relative).as_posix()}"


@dataclass
class Draft:
    """A draft mapping (and query), where it goes, the template it came from, and what is left
    to fill in."""

    target: Target
    mapping: str
    query: str | None = None
    template: templates.Template | None = None
    marks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- databases -----------------------------------------------------------------------------------
def from_database(
    url: str,
    out: Path,
    *,
    name: str | None = None,
    schema: str | None = None,
    tables: Sequence[str] = (),
    use_templates: bool = True,
) -> Draft:
    """A draft for the invoice tables of the database at ``url``, to be written into ``out``
    (named ``name``, default: the template's name, else ``erp``)."""
    with inspect_db.connected(url) as engine:
        names = inspect_db.table_names(engine, schema, tables)
        found = templates.for_tables(names) if use_templates else None
        if found is not None:
            return _sql_template(found, _target(out, name, found.name), schema)
        target = _target(out, name, "erp")
        if not names:
            raise InitError(
                f"--from-db {mask_url(url)}: no tables in {schema or 'the default schema'}"
            )
        infos = inspect_db.describe(engine, names, schema)
        layout = plan(infos)
        for table in (layout.header, layout.lines, layout.supplier):
            if table is not None:
                inspect_db.sample(engine, table, schema)
        quote = engine.dialect.identifier_preparer.quote
        return _generic_sql(layout, target, QueryParts(quote, schema, (), None, None))


def _sql_template(template: templates.Template, target: Target, schema: str | None) -> Draft:
    assert template.query is not None
    query = template.query.read_text(encoding="utf-8")
    if schema:
        query = templates.qualified(query, template.tables, schema)
    text = _template_text(template, target)
    text = templates.with_value(text, "source", "query", scalar(target.query_ref))
    text, questions = templates.asked(text)
    return Draft(
        target, text, query, template, questions, [f"recognised the {template.name} template"]
    )


def _generic_sql(layout: Layout, target: Target, parts: QueryParts) -> Draft:
    selected = select_list(layout)
    candidates = [_candidate(item, layout) for item in selected]
    matches = assign(TARGETS, candidates)
    key = matches.get(KEY.dotted)
    if key is None and len(layout.header.primary_key) <= 1:
        key = matches.get("header.invoice_number")
    tables = [t.name for t in (layout.header, layout.lines, layout.supplier) if t is not None]
    intro = textwrap.wrap(
        f"Draft written by `appzen-etl mapping init` from the tables {', '.join(tables)}: one row "
        "per invoice line carrying its header columns; ORDER BY keeps an invoice's rows together. "
        "Bind parameters :since and :until bound the watermark column (NULL: no bound).",
        width=96,
    )
    query_parts = _query_parts(layout, selected, parts, key, matches)
    query = render(layout, selected, query_parts, "\n".join(f"-- {line}" for line in intro))
    source = [
        "  kind: sql",
        f"  query: {scalar(target.query_ref)} # URL: the ERP_DATABASE_URL setting",
    ]
    draft = DraftInput(
        target.name,
        f"Draft from {', '.join(tables)}",
        source,
        candidates,
        matches,
        _intro(tables),
        key_hint=None if key else _key_hint(layout),
    )
    rendered = render_yaml(draft, target.schema_comment())
    return _draft(target, rendered, query, [f"header table {layout.header.name}", *_roles(layout)])


def _query_parts(
    layout: Layout,
    selected: Sequence[Selected],
    parts: QueryParts,
    key: Match | None,
    matches: dict[str, Match],
) -> QueryParts:
    """The key (else the header's primary key), line-number and watermark columns to ORDER BY
    and bound, as the tables name them."""
    column_of = {item.alias: item for item in selected}

    def table_column(match: Match | None, role: str) -> str | None:
        item = column_of.get(match.column.name) if match is not None else None
        return item.column if item is not None and item.role == role else None

    key_column = table_column(key, "header")
    return QueryParts(
        parts.quote,
        parts.schema,
        (key_column,) if key_column else layout.header.primary_key,
        table_column(matches.get("invoice_lines.line_number"), "lines"),
        table_column(matches.get(WATERMARK.dotted), "header"),
    )


def _key_hint(layout: Layout) -> str:
    key = layout.header.primary_key
    if len(key) > 1:
        joined = " || '-' || ".join(key[1:] if len(key) > 2 else key)
        return (
            f"the invoice key: {layout.header.name}'s key has several columns ({', '.join(key)}); "
            f"add one column joining them to the query, e.g. {joined} AS INVOICE_KEY"
        )
    return f"the invoice key: the column of {layout.header.name} that identifies an invoice"


def _candidate(item: Selected, layout: Layout) -> Candidate:
    table = {"header": layout.header, "lines": layout.lines, "supplier": layout.supplier}[item.role]
    assert table is not None
    rows = "both" if layout.lines is None else ("lines" if item.role == "lines" else "header")
    key = item.role == "header" and table.primary_key == (item.column,)
    return Candidate(item.alias, rows, profile(table.samples.get(item.column, [])), key)  # type: ignore[arg-type]


def _roles(layout: Layout) -> list[str]:
    notes = []
    if layout.lines is not None:
        notes.append(f"line table {layout.lines.name}")
    if layout.supplier is not None:
        notes.append(f"supplier table {layout.supplier.name}")
    return notes


# --- export files --------------------------------------------------------------------------------
def from_files(
    paths: Sequence[Path], out: Path, *, name: str | None = None, use_templates: bool = True
) -> Draft:
    """A draft for one export file (or a template's header and lines files), to be written into
    ``out`` (named ``name``, default: the template's name, else the file's)."""
    shapes = [inspect_file(Path(path)) for path in paths]
    found = templates.for_files([shape.columns for shape in shapes]) if use_templates else None
    if found is not None:
        template, order = found
        target = _target(out, name, template.name)
        return _file_template(template, [shapes[index] for index in order], target)
    if len(shapes) != 1:
        raise InitError(
            "--from-file: give one export file (two only for a template's header and line "
            "exports; these match no template)"
        )
    return _generic_file(shapes[0], _target(out, name, shapes[0].path.stem))


def _file_template(template: templates.Template, shapes: list[FileShape], target: Target) -> Draft:
    text = _template_text(template, target)
    for block, shape in zip(("source", "lines_source"), shapes, strict=False):
        text = templates.with_value(text, block, "path", scalar(target.file_ref(shape.path)))
    text, questions = templates.asked(text)
    return Draft(
        target, text, None, template, questions, [f"recognised the {template.name} template"]
    )


def _generic_file(shape: FileShape, target: Target) -> Draft:
    candidates = [
        Candidate(c, _rows(shape, c), profile(shape.samples.get(c, []))) for c in shape.columns
    ]
    matches = assign(TARGETS, candidates)
    source = [f"  kind: {shape.kind}", f"  path: {scalar(target.file_ref(shape.path))}"]
    if shape.kind == "csv":
        source += [f"  delimiter: {scalar(shape.delimiter)}", f"  encoding: {shape.encoding}"]
    else:
        source += [f"  records: {scalar(shape.records)}"] if shape.records else []
        source += ["  lines: true"] if shape.lines else []
        source += [f"  explode: {scalar(shape.explode)}"] if shape.explode else []
    intro = _intro([shape.path.name])
    draft = DraftInput(
        target.name, f"Draft from {shape.path.name}", source, candidates, matches, intro
    )
    notes = [f"{shape.kind.upper()} export {shape.path.name}"]
    return _draft(target, render_yaml(draft, target.schema_comment()), None, notes)


def _rows(shape: FileShape, column: str) -> Rows:
    """Exploded JSON: the list's columns are line columns, the others header columns."""
    if not shape.explode:
        return "both"
    return "lines" if column.startswith(f"{shape.explode}.") else "header"


# --- shared --------------------------------------------------------------------------------------
def _intro(sources: Sequence[str]) -> list[str]:
    return textwrap.wrap(
        f"Draft written by `appzen-etl mapping init` from {', '.join(sources)}. Columns were "
        "matched to AppZen fields by name, type and content: check each one. Every value marked "
        f"{TODO_MARK} must be filled in before `appzen-etl mapping check` accepts the file.",
        width=96,
    )


def _draft(target: Target, rendered: Rendered, query: str | None, notes: list[str]) -> Draft:
    text = "\n".join(rendered.lines) + "\n"
    return Draft(target, text, query, None, rendered.marks, notes)


def _template_text(template: templates.Template, target: Target) -> str:
    text = template.mapping.read_text(encoding="utf-8")
    lines = text.splitlines()
    schema = target.schema_comment()
    if lines and lines[0].startswith("# yaml-language-server:"):
        lines = lines[1:] if schema is None else [schema, *lines[1:]]
    relative = template.mapping.relative_to(templates.TEMPLATES_DIR.parent.parent)
    banner = f"# Written by `appzen-etl mapping init` from the template {relative.as_posix()}."
    at = 1 if schema else 0
    lines = [*lines[:at], banner, *lines[at:]]
    text = "\n".join(lines) + "\n"
    return _renamed(text, target.name)


def _renamed(text: str, name: str) -> str:
    lines = [
        f"name: {scalar(name)}" if line.startswith("name:") else line for line in text.splitlines()
    ]
    return "\n".join(lines) + "\n"


def write(draft: Draft, *, force: bool = False) -> list[Path]:
    """Write the draft's files; an existing one is kept unless ``force``."""
    target = draft.target
    files = [(target.mapping, draft.mapping)]
    if draft.query is not None:
        files.append((target.query, draft.query))
    existing = [path for path, _ in files if path.exists()]
    if existing and not force:
        raise InitError(
            f"--out {target.out}: {', '.join(map(str, existing))} exists; choose another --name "
            "or --out, or overwrite with --force"
        )
    target.out.mkdir(parents=True, exist_ok=True)
    for path, text in files:
        path.write_text(text, encoding="utf-8")
    return [path for path, _ in files]


def _target(out: Path, name: str | None, fallback: str) -> Target:
    return Target(Path(out), default_name(Path(name or fallback)))


def pending(draft: Draft) -> list[str]:
    """What ``mapping check`` says about the written draft's TODO marks (``file:line path: …``),
    one message per mark; empty when nothing is left to fill in."""
    from pipeline.mapping.loader import MappingFileError, load_mapping  # noqa: PLC0415

    try:
        load_mapping(draft.target.mapping)
    except MappingFileError as error:
        return [message for message in error.errors if f"not filled in: {TODO_MARK}" in message]
    return []


def described(draft: Draft, written: Sequence[Path]) -> list[str]:
    """What ``mapping init`` tells the person who ran it: what it wrote, from what, what is left
    to fill in (as ``mapping check`` will name it), and what to run next."""
    lines = [f"wrote {', '.join(map(str, written))}"]
    if draft.template is not None:
        readme = draft.template.folder / "README.md"
        lines.append(f"from the {draft.template.name} template; read {readme} for its pitfalls")
    else:
        lines.append(
            f"columns matched by name, type and content ({'; '.join(draft.notes) or 'one source'})"
        )
    marks = pending(draft)
    if marks:
        lines.append(f"{len(marks)} value(s) to fill in before mapping check accepts the file:")
        lines += [f"  {mark}" for mark in marks]
    lines.append(f"next: appzen-etl mapping check {draft.target.mapping}")
    return lines
