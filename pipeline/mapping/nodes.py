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
    general = compiled_node(children, probe, optional=optional)
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

    setattr(pair, _PAIR, (first, at_first, second, at_second))  # read by compiled_node
    return pair


_PAIR = "_pair_slots"
"""The attribute a pair node carries: ``(first, at_first, second, at_second)``, so a compiled
parent reads the two cells in place and calls the pair only when one holds a mark."""


def ctx_key(row: Row, ctx: Ctx, prefix: str) -> object:
    """``invoice_id`` when the mapping names none: the invoice key."""
    return ctx.key


def ctx_lines(row: Row, ctx: Ctx, prefix: str) -> object:
    """``invoice_lines``: the lines built before the header (:meth:`Compiler.invoice`)."""
    return ctx.lines


def ctx_line_no(row: Row, ctx: Ctx, prefix: str) -> object:
    """``line_number`` when the mapping names none: the line's position, from 1."""
    return ctx.line_no


_INLINE: dict[Node, str] = {ctx_key: "ctx.key", ctx_lines: "ctx.lines", ctx_line_no: "ctx.line_no"}
"""Child nodes that only read ``ctx``: a compiled node reads the attribute in place of a call."""


def compiled_node(children: list[Child], probe: list[int], *, optional: bool) -> Node:
    """:func:`general_node`'s object as straight-line code made for these children (no loop
    over them, no tuple unpacking, constant slot positions, the ``ctx``-only children read in
    place, one dict display when nothing is left out): the same values, keys in the same order,
    marks resolved and children called in the same order (so failures are recorded alike).
    ``tests/mapping/test_nodes.py`` holds it equal to :func:`general_node`."""
    if not children:
        return general_node(children, probe, optional=optional)
    space: dict[str, Any] = {"Mark": Mark, "OMIT": OMIT, "BLANK": BLANK, "is_blank": is_blank}
    code = ["def node(row, ctx, prefix):"]
    if probe:
        tests = [
            f"row[{~index}] is not BLANK" if index < 0 else f"not is_blank(row[{index}])"
            for index in probe
        ]
        code.append(f"    if not ({' or '.join(tests)}):")
        code.append("        return OMIT")
    for at, (_, slot, arg) in enumerate(children):
        if slot >= 0:
            space[f"a{at}"] = arg
            code.append(f"    v{at} = row[{slot}]")
            code.append(f"    if v{at}.__class__ is Mark:")
            code.append(f"        v{at} = a{at}.resolve(v{at}, ctx, prefix)")
        elif arg in _INLINE:
            code.append(f"    v{at} = {_INLINE[arg]}")
        elif (pair := getattr(arg, _PAIR, None)) is not None:
            first, at_first, second, at_second = pair
            space[f"n{at}"] = arg
            code.append(f"    x = row[{at_first}]")
            code.append(f"    y = row[{at_second}]")
            code.append("    if x.__class__ is not Mark and y.__class__ is not Mark:")
            code.append(f"        v{at} = {{{first!r}: x, {second!r}: y}}")
            code.append("    else:")
            code.append(f"        v{at} = n{at}(row, ctx, prefix)")
        else:
            space[f"n{at}"] = arg
            code.append(f"    v{at} = n{at}(row, ctx, prefix)")
    names = [repr(name) for name, _, _ in children]
    kept = " and ".join(f"v{at} is not OMIT" for at in range(len(children)))
    code.append(f"    if {kept}:")
    code.append("        return {" + ", ".join(f"{n}: v{at}" for at, n in enumerate(names)) + "}")
    code.append("    out = {}")
    for at, name in enumerate(names):
        code.append(f"    if v{at} is not OMIT:")
        code.append(f"        out[{name}] = v{at}")
    code.append("    return OMIT if not out else out" if optional else "    return out")
    exec("\n".join(code), space)  # noqa: S102 - our own text: names are repr()'d, slots ints
    node: Node = space["node"]
    return node


def general_node(children: list[Child], probe: list[int], *, optional: bool) -> Node:
    """An object's node as a loop over its children: the reference :func:`compiled_node` is
    held equal to (and what it falls back on for an object without children)."""

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
    if len(entries) == 1 and not entries[0][1]:  # one entry read from the row (a VAT code)
        entry, first = entries[0][0], f"{rel}0."

        def single(row: Row, ctx: Ctx, prefix: str) -> object:
            value = entry(row, ctx, prefix + first)
            return OMIT if value is OMIT else [value]

        return single

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
