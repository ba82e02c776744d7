"""Mapping features the ERP templates need: case-insensitive columns, ``min:``, TODO marks."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from pipeline.mapping import (
    MappedInvoice,
    MappingError,
    MappingFileError,
    RejectedInvoice,
    load_mapping,
)
from tests.mapping.conftest import COLUMNS, MINIMAL, Load, Write, chunk, row, run

INSENSITIVE = MINIMAL + "column_case: insensitive\n"
UPPER = [name.upper() for name in COLUMNS]


def test_insensitive_columns_read_a_source_of_any_case(load: Load) -> None:
    spec = load(INSENSITIVE, columns=UPPER)
    results = run(spec, [chunk([row("A1"), row("A2")], UPPER)])
    assert [r.key for r in results if isinstance(r, MappedInvoice)] == ["A1", "A2"]
    assert isinstance(results[0], MappedInvoice)
    exact = load(MINIMAL)
    assert results[0].payload == run(exact, [chunk([row("A1")])])[0].payload  # type: ignore[union-attr]


def test_exact_columns_stay_exact(load: Load) -> None:
    with pytest.raises(
        MappingFileError,
        match=re.escape(
            "no column 'inv' in x.csv; did you mean 'INV'? (or set `column_case: insensitive`)"
        ),
    ):
        load(MINIMAL, columns=UPPER)
    with pytest.raises(MappingError, match="no column 'inv'"):
        run(load(MINIMAL), [chunk([row("A1")], UPPER)])


def test_columns_that_differ_only_in_case_are_ambiguous(load: Load) -> None:
    spec = load(INSENSITIVE)
    columns = [*UPPER, "Qty"]
    with pytest.raises(MappingError) as caught:
        run(spec, [chunk([[*row("A1"), "2"]], columns)])
    assert "column 'qty' matches 'QTY', 'Qty' in x.csv, which differ only in case" in str(
        caught.value
    )
    # the exact spelling is never ambiguous
    exact = [*COLUMNS, "QTY"]
    (result,) = run(spec, [chunk([[*row("A1"), "9"]], exact)])
    assert isinstance(result, MappedInvoice)
    assert result.invoice.invoice_lines[0].quantity == Decimal("2")


def test_insensitive_columns_with_a_lines_source(load: Load) -> None:
    text = INSENSITIVE.replace(
        "invoice_key: inv",
        "invoice_key: inv\nlines_source: {kind: csv, path: lines.csv}\nlines_key: ref",
    )
    spec = load(text)
    headers = [chunk([row("A1")[:5]], ["INV", "Date", "SUP", "TOTAL", "CUR"], "h.csv")]
    lines = [chunk([["A1", "W", "2", "5.00", "10.00"]], ["REF", "DESC", "QTY", "PRICE", "AMOUNT"])]
    (result,) = run(spec, headers, lines)
    assert isinstance(result, MappedInvoice)


def test_min_rejects_values_below_it(load: Load) -> None:
    text = MINIMAL.replace(
        "total_amount: {amount: total, currency: cur}\ninvoice_lines",
        "total_amount: {amount: {column: total, min: 0}, currency: cur}\ninvoice_lines",
    )
    spec = load(text)
    zero_row = row("A2", total="0", qty="0", amount="0")
    good, zero, bad = run(spec, [chunk([row("A1"), zero_row, row("A3", total="-1")])])
    assert isinstance(good, MappedInvoice)
    assert isinstance(zero, MappedInvoice)
    assert isinstance(bad, RejectedInvoice)
    (failure,) = bad.failures
    assert (failure.rule, failure.field_path, failure.source_column, failure.value) == (
        "range", "total_amount.amount", "total", "-1",
    )  # fmt: skip
    assert failure.message == "total_amount.amount: -1 is below the minimum 0"
    assert "min:" in (failure.hint or "")


def test_min_applies_to_products_and_line_sums(load: Load) -> None:
    text = MINIMAL.replace(
        "total_amount: {amount: total, currency: cur}\ninvoice_lines",
        "total_amount: {amount: {sum_lines: total_amount.amount, min: 0}, currency: cur}\n"
        "invoice_lines",
    ).replace(
        "total_amount: {amount: amount, currency: cur}",
        "total_amount: {amount: {multiply: [qty, price], min: -5}, currency: cur}",
    )
    spec = load(text)
    rows = [row("A1", qty="-1", price="4"), row("A2", qty="-2", price="3")]
    first, second = run(spec, [chunk(rows)])
    assert isinstance(first, RejectedInvoice)
    assert [f.field_path for f in first.failures] == ["total_amount.amount"]
    assert isinstance(second, RejectedInvoice)
    assert {f.field_path for f in second.failures} == {"invoice_lines.0.total_amount.amount"}


def test_min_needs_a_decimal_value(load: Load) -> None:
    text = MINIMAL.replace("supplier_id: sup", "supplier_id: {column: sup, min: 0}")
    with pytest.raises(MappingFileError, match="min: applies to decimal values, not string"):
        load(text)


def test_todo_marks_are_refused_with_their_place(write: Write) -> None:
    text = MINIMAL.replace(
        "invoice_date: date",
        "# TODO(mapping init): which column holds the invoice date?\n"
        '  invoice_date: "TODO(mapping init): the invoice date column"',
    )
    mark = "header.invoice_date: not filled in: TODO(mapping init): the invoice date column"
    path = write(text)
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert caught.value.errors == [f"{path}:7 {mark}"]
    broken = write(text.replace("{const: E1}", "{const: E1, unknown: 1}"), "broken.yaml")
    with pytest.raises(MappingFileError) as both:
        load_mapping(broken)
    assert both.value.errors[0] == f"{broken}:7 {mark}"
    assert both.value.errors[1].startswith(f"{broken}:8 header.entity_id.unknown: unknown key")


def test_multiply_columns_are_read_and_checked_like_any_other(load: Load) -> None:
    text = MINIMAL.replace(
        "total_amount: {amount: amount, currency: cur}",
        "total_amount: {amount: {multiply: [amount, sign]}, currency: cur}",
    )
    spec = load(text)
    (result,) = run(
        spec, [chunk([[*row("A1", qty="-2", total="-10.00"), "-1"]], [*COLUMNS, "sign"])]
    )
    assert isinstance(result, MappedInvoice)
    assert result.invoice.invoice_lines[0].total_amount.amount == Decimal("-10.00")
    with pytest.raises(MappingError, match=r"multiply\.1: no column 'sign' in x\.csv"):
        run(spec, [chunk([row("A1")])])
