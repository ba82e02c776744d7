"""A draft extraction query for a database no template knows: which table holds the invoice
headers, which the lines, which the suppliers, how they join, and the SELECT that reads them
one row per line, ordered so an invoice's rows are adjacent.

Roles come from foreign keys (a line table refers to the header table, the header to the supplier
table), else from a column named like the other table's single-column primary key; line tables
are told apart by their quantity, price and line-number columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.scaffold.inspect_db import TableInfo
from pipeline.scaffold.targets import HEADER, LINES, name_score

_LINE_HINTS = [t for t in LINES if t.path[-1] in ("quantity", "amount", "line_number")]
_NAME_HINTS = [t for t in HEADER if t.path[-1] == "supplier_name"]


@dataclass(frozen=True)
class Join:
    """``child.columns = parent.columns``."""

    child_columns: tuple[str, ...]
    parent_columns: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    """The tables a draft reads and how: the header table, optionally its lines and suppliers."""

    header: TableInfo
    lines: TableInfo | None = None
    line_join: Join | None = None
    supplier: TableInfo | None = None
    supplier_join: Join | None = None


@dataclass(frozen=True)
class Selected:
    """One output column: ``alias`` (its name in the query's result) from ``role``'s ``column``."""

    alias: str
    role: str
    column: str


def plan(tables: Sequence[TableInfo]) -> Layout:
    """The roles of ``tables``: a line table and its header table when one refers to another,
    else the table with the most invoice-like columns alone."""
    pairs = [(child, parent, join) for child, parent, join in _references(tables)]
    lined = [(_lineness(child), child, parent, join) for child, parent, join in pairs]
    lined = [entry for entry in lined if entry[0] > 0]
    if not lined:
        return Layout(header=max(tables, key=_headerness))
    # the likeliest lines table; for it, the parent sharing the most key columns (RBKP, not T001)
    _, lines, header, join = max(
        lined, key=lambda e: (e[0], len(e[3].child_columns), _headerness(e[2]))
    )
    supplier = _supplier(tables, header, exclude=(lines,))
    return Layout(header, lines, join, *(supplier or (None, None)))


def _references(tables: Sequence[TableInfo]) -> list[tuple[TableInfo, TableInfo, Join]]:
    """Every (child, parent, join) where child refers to parent."""
    by_name = {table.name.casefold(): table for table in tables}
    found = []
    for child in tables:
        for fk in child.foreign_keys:
            parent = by_name.get(fk.referred_table.casefold())
            if parent is not None and parent is not child:
                found.append((child, parent, Join(fk.columns, fk.referred_columns)))
        found.extend(_implicit(child, tables))
    return found


def _implicit(
    child: TableInfo, tables: Sequence[TableInfo]
) -> list[tuple[TableInfo, TableInfo, Join]]:
    """References without a declared foreign key: every column of another table's primary key
    present in this table, which is not that same key (``RSEG`` holds ``RBKP``'s MANDT, BELNR,
    GJAHR; a line table holds its header's INVOICE_ID)."""
    declared = {fk.referred_table.casefold() for fk in child.foreign_keys}
    own = {column.casefold(): column for column in child.columns}
    found = []
    for parent in tables:
        key = parent.primary_key
        if parent is child or parent.name.casefold() in declared or not key:
            continue
        if all(column.casefold() in own for column in key):
            mine = tuple(own[column.casefold()] for column in key)
            if tuple(child.primary_key) != mine:
                found.append((child, parent, Join(mine, tuple(key))))
    return found


def _lineness(table: TableInfo) -> int:
    return sum(any(name_score(c, t.synonyms) >= 0.8 for c in table.columns) for t in _LINE_HINTS)


def _headerness(table: TableInfo) -> int:
    return sum(any(name_score(c, t.synonyms) >= 0.8 for c in table.columns) for t in HEADER)


def _supplier(
    tables: Sequence[TableInfo], header: TableInfo, exclude: tuple[TableInfo, ...]
) -> tuple[TableInfo, Join] | None:
    for child, parent, join in _references(tables):
        if child is header and parent not in exclude and _named(parent):
            return parent, join
    return None


def _named(table: TableInfo) -> bool:
    return any(name_score(c, t.synonyms) >= 0.8 for c in table.columns for t in _NAME_HINTS)


def select_list(layout: Layout) -> list[Selected]:
    """The output columns: the header's as they are, the lines' and suppliers' without their
    join columns, renamed (``line_…``, ``supplier_…``) where a name is taken or says nothing."""
    chosen = [Selected(column, "header", column) for column in layout.header.columns]
    taken = {column.casefold() for column in layout.header.columns}
    if layout.lines is not None and layout.line_join is not None:
        skip = {column.casefold() for column in layout.line_join.child_columns}
        chosen += _renamed(layout.lines, "lines", "line_", skip, taken, always=False)
    if layout.supplier is not None and layout.supplier_join is not None:
        skip = {column.casefold() for column in layout.supplier_join.parent_columns}
        chosen += _renamed(layout.supplier, "supplier", "supplier_", skip, taken, always=True)
    return chosen


def _renamed(
    table: TableInfo, role: str, prefix: str, skip: set[str], taken: set[str], *, always: bool
) -> list[Selected]:
    out = []
    for column in table.columns:
        if column.casefold() in skip:
            continue
        alias = column
        telling = column.casefold().startswith((prefix, "vendor_", "supplier"))
        if (always and not telling) or alias.casefold() in taken:
            alias = f"{prefix.upper() if column.isupper() else prefix}{column}"
        taken.add(alias.casefold())
        out.append(Selected(alias, role, column))
    return out


@dataclass(frozen=True)
class QueryParts:
    """What the query needs beyond the layout: how names are quoted, the schema, the header's key
    column, the line-number column and the watermark column (table column names)."""

    quote: Callable[[str], str]
    schema: str | None
    key: tuple[str, ...]
    line_number: str | None
    watermark: str | None


def render(layout: Layout, selected: Sequence[Selected], parts: QueryParts, intro: str) -> str:
    """The SELECT, with ``:since``/``:until`` on the watermark when there is one."""
    q = parts.quote  # the dialect's identifier quoting (it quotes only names that need it)
    alias = {"header": "h", "lines": "l", "supplier": "s"}
    rows = []
    for item in selected:
        expression = f"{alias[item.role]}.{q(item.column)}"
        rows.append(expression if item.alias == item.column else f"{expression} AS {q(item.alias)}")
    text = [intro, "SELECT", ",\n".join(f"    {row}" for row in rows)]
    text.append(f"FROM {_table(layout.header, parts)} h")
    if layout.lines is not None and layout.line_join is not None:
        text.append(f"JOIN {_table(layout.lines, parts)} l ON {_on('l', 'h', layout.line_join, q)}")
    if layout.supplier is not None and layout.supplier_join is not None:
        on = _on("h", "s", layout.supplier_join, q)
        text.append(f"LEFT JOIN {_table(layout.supplier, parts)} s ON {on}")
    if parts.watermark:
        mark = f"h.{q(parts.watermark)}"
        text.append(
            f"WHERE (:since IS NULL OR {mark} > :since)\n  AND (:until IS NULL OR {mark} <= :until)"
        )
    order = [f"h.{q(column)}" for column in parts.key]
    if parts.line_number and layout.lines is not None:
        order.append(f"l.{q(parts.line_number)}")
    if order:
        text.append(f"ORDER BY {', '.join(order)}")
    return "\n".join(text) + "\n"


def _table(table: TableInfo, parts: QueryParts) -> str:
    q = parts.quote
    name = q(table.name)
    return f"{q(parts.schema)}.{name}" if parts.schema else name


def _on(child: str, parent: str, join: Join, q: Callable[[str], str]) -> str:
    pairs = zip(join.child_columns, join.parent_columns, strict=True)
    return " AND ".join(f"{child}.{q(a)} = {parent}.{q(b)}" for a, b in pairs)
