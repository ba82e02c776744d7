"""The closures a compiled mapping is made of: objects, lists of entries, sums over lines.

A node is called as ``node(row, ctx, prefix)`` and returns the value to send or :data:`OMIT`
(see :mod:`pipeline.mapping.plan`). Children are ``(name, slot, leaf)`` for a value read from a
converted slot of the row, or ``(name, -1, node)``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.mapping.cells import BLANK, Mark
from pipeline.mapping.chain import WIDE
from pipeline.mapping.layout import OMIT, Child, Ctx, Leaf, Node, Row
from pipeline.mapping.transforms import ConversionError, Converter, is_blank


def object_node(children: list[Child], probe: list[int], *, optional: bool) -> Node:
    general = _general_node(children, probe, optional=optional)
    if len(children) != 2 or any(slot < 0 for _, slot, _ in children):
        return general
    (first, at_first, _), (second, at_second, _) = children
    if any(index >= 0 or ~index not in (at_first, at_second) for index in probe):
        return general

    def pair(row: Row, ctx: Ctx, prefix: str) -> object:
        """Two slot fields (money: amount and currency), the common case inlined: when neither
        cell holds a mark, the object is both values (and not all blank, so never left out)."""
        a, b = row[at_first], row[at_second]
        if a.__class__ is not Mark and b.__class__ is not Mark:
            return {first: a, second: b}
        return general(row, ctx, prefix)

    return pair


def _general_node(children: list[Child], probe: list[int], *, optional: bool) -> Node:
    def node(row: Row, ctx: Ctx, prefix: str) -> object:
        if probe:
            for index in probe:
                if (row[~index] is not BLANK) if index < 0 else not is_blank(row[index]):
                    break
            else:
                return OMIT
        out = {}
        for name, slot, arg in children:
            if slot >= 0:
                value = row[slot]
                if value.__class__ is Mark:
                    value = arg.resolve(value, ctx, prefix)
                    if value is OMIT:
                        continue
            else:
                value = arg(row, ctx, prefix)
                if value is OMIT:
                    continue
            out[name] = value
        return OMIT if optional and not out else out

    return node


def sum_node(path: list[str], leaf: Leaf, finish: Converter) -> Node:
    def node(row: Row, ctx: Ctx, prefix: str) -> object:
        total = Decimal(0)
        for line in ctx.lines:
            value: Any = line
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, Decimal):
                try:
                    total = WIDE.add(total, value)
                except ArithmeticError:
                    problem = ConversionError("decimal", "the sum of the lines is not exact")
                    return leaf.resolve(Mark("failed", value, problem), ctx, prefix)
        try:
            return finish(total)
        except ConversionError as error:
            return leaf.resolve(Mark("failed", total, error), ctx, prefix)

    return node


def list_node(rel: str, entries: list[tuple[Node, bool]]) -> Node:
    def node(row: Row, ctx: Ctx, prefix: str) -> object:
        items: list[object] = []
        for entry, each in entries:
            if not each:
                value = entry(row, ctx, f"{prefix}{rel}{len(items)}.")
                if value is not OMIT:
                    items.append(value)
                continue
            seen: set[str] = set()
            for index, line_row in enumerate(ctx.rows):
                ctx.row = index
                value = entry(line_row, ctx, f"{prefix}{rel}{len(items)}.")
                if value is not OMIT and repr(value) not in seen:
                    seen.add(repr(value))
                    items.append(value)
            ctx.row = -1
        return items or OMIT

    return node
