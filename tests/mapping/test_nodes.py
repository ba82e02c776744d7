"""Compiled object nodes: the straight-line code gives what the loop over the children gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.mapping.cells import BLANK, Mark
from pipeline.mapping.layout import NOTHING, OMIT, Child, Ctx, Leaf, Row
from pipeline.mapping.nodes import (
    compiled_node,
    ctx_key,
    ctx_line_no,
    ctx_lines,
    general_node,
    list_node,
    object_node,
)
from pipeline.mapping.transforms import ConversionError

WIDTH = 6
_PROBLEM = ConversionError("decimal", "is no number", "fix it")
cells = st.one_of(
    st.sampled_from(
        [BLANK, Mark("unmapped", "X"), Mark("failed", "y", _PROBLEM), None, "", " ", "a"]
    ),
    st.integers(),
)


def _leaf(name: str, default: object, error_on_null: bool) -> Leaf:
    return Leaf(
        rel=name,
        column=f"col_{name}",
        default=default,
        error_on_null=error_on_null,
        blank=ConversionError("required", f"{name} is blank"),
        unmapped=ConversionError("value_map", f"{name} is left out"),
    )


def _child_node(name: str, answer: str) -> Any:
    """A child node that returns a value, leaves itself out, or records a failure."""

    def node(row: Row, ctx: Ctx, prefix: str) -> object:
        if answer == "omit":
            return OMIT
        if answer == "fail":
            ctx.fail(f"{prefix}{name}", None, row[0], _PROBLEM)
            return OMIT
        return {"from": name, "first": row[0]}

    return node


children_st = st.lists(
    st.one_of(
        st.tuples(
            st.just("slot"),
            st.integers(0, WIDTH - 1),
            st.sampled_from([NOTHING, "dflt"]),
            st.booleans(),
        ),
        st.tuples(st.just("node"), st.sampled_from(["value", "omit", "fail"])),
        st.tuples(st.just("ctx"), st.sampled_from([ctx_key, ctx_lines, ctx_line_no])),
        st.tuples(st.just("pair"), st.integers(0, WIDTH - 1), st.integers(0, WIDTH - 1)),
    ),
    max_size=6,
)


def _children(specs: list[tuple[Any, ...]]) -> list[Child]:
    out: list[Child] = []
    for at, spec in enumerate(specs):
        name = f"f{at}'\"\\"  # names are written into code: quotes and backslashes stay text
        if spec[0] == "slot":
            out.append((name, spec[1], _leaf(name, spec[2], spec[3])))
        elif spec[0] == "node":
            out.append((name, -1, _child_node(name, spec[1])))
        elif spec[0] == "pair":  # money: read in place by a compiled parent
            pair = [("amount", spec[1], _leaf("amount", NOTHING, True))]
            pair.append(("currency", spec[2], _leaf("currency", "EUR", False)))
            out.append((name, -1, object_node(pair, [~spec[1], ~spec[2]], optional=True)))
        else:
            out.append((name, -1, spec[1]))
    return out


def _run(node: Any, row: Row) -> tuple[object, list[Any]]:
    ctx = Ctx("K1", [row], lambda index: f"x.csv:{index + 2}", row=0, line_no=3, lines=["L"])
    value = node(row, ctx, "invoice_lines.0.")
    shown = list(value.items()) if isinstance(value, dict) else value
    failures = [(f.rule, f.message, f.field_path, f.source_column, f.value) for f in ctx.failures]
    return shown, failures


@settings(max_examples=300, deadline=None)
@given(
    specs=children_st,
    row=st.lists(cells, min_size=WIDTH, max_size=WIDTH),
    probe=st.lists(st.integers(-WIDTH, WIDTH - 1), max_size=3),
    optional=st.booleans(),
)
def test_a_compiled_node_gives_what_the_loop_gives(
    specs: list[tuple[Any, ...]], row: list[object], probe: list[int], optional: bool
) -> None:
    children = _children(specs)
    reference = general_node(children, probe, optional=optional)
    compiled = compiled_node(children, probe, optional=optional)
    assert _run(compiled, tuple(row)) == _run(reference, tuple(row))


def test_a_compiled_node_leaves_out_what_resolves_to_nothing() -> None:
    children = _children([("slot", 0, NOTHING, False), ("slot", 1, "dflt", True)])
    node = compiled_node(children, [], optional=True)
    assert _run(node, (BLANK, BLANK, 0, 0, 0, 0))[0] == [("f1'\"\\", "dflt")]
    assert _run(node, (Mark("unmapped", "X"), Mark("unmapped", "Y"), 0, 0, 0, 0)) == (
        OMIT,
        [("value_map", "invoice_lines.0.f1'\"\\: f1'\"\\ is left out", "invoice_lines.0.f1'\"\\",
          "col_f1'\"\\", "Y")],
    )  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(answer=st.sampled_from(["value", "omit", "fail"]), first=cells)
def test_a_list_of_one_entry_is_the_general_list(answer: str, first: object) -> None:
    """One entry read from the row: what the loop over entries gives (a second entry that is
    always left out takes the loop)."""
    entry = _child_node("code", answer)
    single = list_node("vat_breakdown.", [(entry, False)])
    looped = list_node("vat_breakdown.", [(entry, False), (_child_node("x", "omit"), False)])
    row = (first, 0, 0, 0, 0, 0)
    assert _run(single, row) == _run(looped, row)
