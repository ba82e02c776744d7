"""The source columns a mapping reads, where each is named, and which of them a source lacks."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Literal

from pipeline.mapping.leaves import CustomJsonSpec, Strict, ValueSpec, suggest, template_columns
from pipeline.mapping.names import ColumnLookup, case_hint
from pipeline.mapping.spec import KeyPath, MappingSpec, iter_paths

Level = Literal["header", "lines"]


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """One use of a column: the column, the key path that names it, and which rows it reads."""

    column: str
    path: KeyPath
    level: Level


def column_refs(spec: MappingSpec) -> list[ColumnRef]:
    """Every column the mapping reads, in file order."""
    refs = [ColumnRef(spec.invoice_key, ("invoice_key",), "header")]
    if spec.lines_key is not None:
        refs.append(ColumnRef(spec.lines_key, ("lines_key",), "lines"))
    if spec.watermark_column is not None:
        refs.append(ColumnRef(spec.watermark_column, ("watermark_column",), "header"))
    if spec.status is not None:
        refs.append(ColumnRef(spec.status.column, ("status", "column"), "header"))
        error = spec.status.error
        for name in ("message", "status", "exception"):
            column = None if error is None else getattr(error, name)
            if column is not None:
                refs.append(ColumnRef(column, ("status", "error", name), "header"))
    refs.extend(_tree_refs(spec.header, ("header",)))
    refs.extend(_tree_refs(spec.invoice_lines, ("invoice_lines",)))
    reference = spec.checks.supplier.reference
    if reference is not None:
        refs.append(ColumnRef(reference, ("checks", "supplier", "reference"), "header"))
    return refs


def _tree_refs(tree: Strict, root: KeyPath) -> Iterator[ColumnRef]:
    for path, node in iter_paths(tree, root):
        level: Level = "lines" if path[0] == "invoice_lines" or _per_row(tree, path) else "header"
        if isinstance(node, ValueSpec):
            if node.column is not None:
                yield ColumnRef(node.column, (*path, "column"), level)
            if node.template is not None:
                for column in template_columns(node.template):
                    yield ColumnRef(column, (*path, "template"), level)
            for index, column in enumerate(node.multiply or []):
                yield ColumnRef(column, (*path, "multiply", index), level)
        elif isinstance(node, CustomJsonSpec):
            for index, column in enumerate(node.columns):
                yield ColumnRef(column, (*path, "columns", index), level)


def _per_row(tree: Strict, path: KeyPath) -> bool:
    """Whether ``path`` lies in a header list entry marked ``for_each_row`` (reads line rows)."""
    node: object = tree
    for part in path[1:]:
        if isinstance(node, Strict):
            node = getattr(node, str(part), None)
        elif isinstance(node, list) and isinstance(part, int):
            node = node[part]
            if getattr(node, "for_each_row", False):
                return True
        else:
            return False
    return False


def needed_columns(spec: MappingSpec, level: Level) -> list[str]:
    """The distinct columns the rows of ``level`` must carry, in first-use order."""
    out: dict[str, None] = {}
    for ref in column_refs(spec):
        if ref.level == level or spec.lines_source is None:
            out[ref.column] = None
    return list(out)


def missing_columns(
    spec: MappingSpec,
    columns: Collection[str],
    line_columns: Collection[str] | None = None,
    *,
    source: str = "the source",
    lines_source: str = "the lines source",
) -> list[str]:
    """``file:line path: no column 'x' in <source>; did you mean 'y'?`` for each column the
    sources lack (header fields read ``columns``; with a lines source, line fields read
    ``line_columns`` then ``columns``, and are not checked when ``line_columns`` is None)."""
    errors: list[tuple[int, str]] = []
    joined = spec.lines_source is not None and line_columns is not None
    for ref in column_refs(spec):
        if spec.lines_source is not None and line_columns is None and ref.level == "lines":
            continue  # the line source's columns are not known here: checked on its first chunk
        if joined and ref.path == ("lines_key",):
            pool, shown = list(line_columns or ()), lines_source
        elif joined and ref.level == "lines":
            pool, shown = [*(line_columns or ()), *columns], f"{lines_source} or {source}"
        else:
            pool, shown = list(columns), source
        message = _absent(ref.column, ColumnLookup(pool, spec.column_case), shown)
        if message:
            errors.append((spec.line_of(ref.path), f"{spec.where(ref.path)}: {message}"))
    return [message for _, message in sorted(errors, key=lambda pair: pair[0])]


def _absent(column: str, pool: ColumnLookup, shown: str) -> str | None:
    """Why ``column`` cannot be read from ``pool`` (None: it can)."""
    if column in pool:
        return None
    several = pool.candidates(column)
    if len(several) > 1:
        return (
            f"column {column!r} matches {', '.join(map(repr, several))} in {shown}, which differ "
            "only in case: write one of them exactly and set `column_case: exact`"
        )
    hint = case_hint(column, pool.columns) or suggest(column, pool.columns)
    return f"no column {column!r} in {shown}{hint}"


def status_read_refs(spec: MappingSpec) -> list[ColumnRef]:
    """The columns status-sync's read takes from ``status.source`` (the main source for
    ``main``): the key, the status and error columns, its watermark; none without a read."""
    status = spec.status
    if status is None or status.source is None:
        return []
    own = status.source.kind != "main"
    key = ("status", "key") if own and status.key else ("invoice_key",)
    refs = [ColumnRef(status.key if own and status.key else spec.invoice_key, key, "header")]
    refs.append(ColumnRef(status.column, ("status", "column"), "header"))
    for name in ("message", "status", "exception"):
        column = None if status.error is None else getattr(status.error, name)
        if column is not None:
            refs.append(ColumnRef(column, ("status", "error", name), "header"))
    if status.watermark_column is not None:
        refs.append(ColumnRef(status.watermark_column, ("status", "watermark_column"), "header"))
    return refs


def missing_status_columns(spec: MappingSpec, columns: Collection[str], source: str) -> list[str]:
    """``file:line status.column: no column 'x' in <status source>; did you mean 'y'?`` for each
    column of the status read that ``columns`` (the status source's) lack."""
    lookup = ColumnLookup(list(columns), spec.column_case)
    errors = []
    for ref in status_read_refs(spec):
        message = _absent(ref.column, lookup, source)
        if message:
            errors.append(f"{spec.where(ref.path)}: {message}")
    return errors
