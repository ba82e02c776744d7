"""Property tests: whatever a cell holds, the engine gives a MappedInvoice or a RejectedInvoice."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.appzen.models import payload_json
from pipeline.extract.base import Chunk
from pipeline.mapping import (
    MappedInvoice,
    MappingEngine,
    MappingSpec,
    RejectedInvoice,
    load_mapping,
)
from pipeline.mapping.transforms import decimal_converter
from tests.mapping.conftest import COLUMNS, MINIMAL, Load, row

RICH = """
source: {kind: csv, path: x.csv}
invoice_key: inv
watermark_column: upd
status: {column: st, error: {message: msg}}
formats: {decimal_separator: ",", thousands_separator: ".", date_formats: ["%d.%m.%Y", iso]}
header:
  invoice_number: inv
  invoice_date: date
  entity_id: {column: ent, default: E1}
  supplier_id: sup
  invoice_type: {column: typ, map: {S: INVOICE, C: CREDIT_NOTE}, others: keep}
  purchase_order_number: {template: "{ent}-{sup}"}
  po_policy: {po_backed: {column: flag, type: boolean}}
  total_amount: {amount: total, currency: cur}
  vat_breakdown:
    - {for_each_row: true, code: typ, rate: price}
  custom_json: {columns: [desc, upd]}
  extra:
    raw: flag
invoice_lines:
  line_number: {column: qty, type: integer}
  line_description: {column: desc, transform: [collapse_spaces]}
  quantity: qty
  unit_price: {amount: price, currency: cur}
  total_amount: {amount: {multiply: [qty, price]}, currency: cur, }
  segments:
    - code: desc
      name: typ
      segment_type: ent
      appzen_segment_type: {const: OTHER_SEGMENT}
      segment_name_id: sup
"""
NAMES = [*COLUMNS, "ent", "typ", "flag", "upd", "st", "msg"]

text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from(["\x00", "\u200f", "\u202e", "\ufeff", ",", ".", "-"]),
    max_size=30,
)
cells = st.one_of(
    st.none(),
    text,
    st.sampled_from(["9" * 100_000, "1.234," + "5" * 5_000, "\u202e" * 50_000, "x" * 1_000_000]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.dates().map(lambda d: d),
    st.datetimes(),
    st.booleans(),
    st.sampled_from(["1.234,56", "31.12.2024", "EUR", "NaN", "inf", "1e309", "-0", "S", "C", ""]),
    st.characters(categories=["Cs"]),  # lone surrogates: not encodable as UTF-8
)


def _chunk(rows: list[list[object]], first_row: int) -> Chunk:
    return Chunk.from_rows(NAMES, rows, "x.csv", first_row)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.lists(cells, min_size=len(NAMES), max_size=len(NAMES)), min_size=1, max_size=5))
def test_any_cells_give_results_never_exceptions(
    load_rich: MappingSpec, rows: list[list[object]]
) -> None:
    results = list(MappingEngine(load_rich).run([_chunk(rows[:3], 2), _chunk(rows[3:], 5)]))
    assert sum(1 for _ in results) >= 1
    for result in results:
        assert isinstance(result, MappedInvoice | RejectedInvoice)
        if isinstance(result, MappedInvoice):
            assert result.payload == payload_json(result.invoice)
            json.loads(result.payload)
        else:
            assert result.failures
            assert all(f.stage in ("mapping", "validation") and f.message for f in result.failures)
            assert all(f.value is None or len(f.value) < 260 for f in result.failures)


@settings(max_examples=200, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_text_round_trips_exactly(number: Decimal) -> None:
    text = f"{number:f}"
    if len(text) > 60 or (number and number.adjusted() >= 18):
        return
    parsed = decimal_converter()(text)
    assert f"{parsed:f}" == text.lstrip("+")


@settings(max_examples=200, deadline=None)
@given(st.integers(-(10**15), 10**15), st.integers(0, 99))
def test_european_grouping_round_trips(units: int, cents: int) -> None:
    grouped = f"{abs(units):,}".replace(",", ".")
    text = f"{'-' if units < 0 else ''}{grouped},{cents:02d}"
    assert decimal_converter(",", ".")(text) == Decimal(f"{units}") + (
        Decimal(cents) / 100 if units >= 0 else -Decimal(cents) / 100
    )


def test_the_rich_mapping_maps_a_clean_row(load_rich: MappingSpec) -> None:
    row = ["A1", "31.12.2024", "S1", "1.234,50", "EUR", "Widget  x", "2", "617,25", "", "E1", "S",
           "yes", datetime(2024, 1, 1), "POSTED", ""]  # fmt: skip
    (result,) = MappingEngine(load_rich).run([_chunk([row], 2)])
    assert isinstance(result, MappedInvoice), result
    sent = json.loads(result.payload)
    assert sent["invoice_lines"][0]["total_amount"]["amount"] == 1234.5
    assert sent["custom_json"] == {"desc": "Widget  x", "upd": "2024-01-01T00:00:00"}
    assert result.invoice.invoice_date == "2024-12-31T00:00:00Z"
    assert result.watermark == datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> MappingSpec:
    path = tmp_path_factory.mktemp("described") / "m.yaml"
    path.write_text(
        MINIMAL.replace("  supplier_id: sup", "  supplier_id: sup\n  invoice_description: note"),
        encoding="utf-8",
    )
    return load_mapping(path)


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200))
def test_any_text_reaches_the_payload_exactly(described: MappingSpec, text_value: str) -> None:
    spec = described
    chunk = Chunk.from_rows([*COLUMNS, "note"], [[*row("A1"), text_value]], "x.csv", 2)
    (result,) = MappingEngine(spec).run([chunk])
    assert isinstance(result, MappedInvoice)
    sent = json.loads(result.payload)
    assert sent.get("invoice_description") == (text_value.strip() or None)


def test_a_lone_surrogate_is_a_rejected_invoice_not_a_crash(load: Load) -> None:
    spec = load(MINIMAL)
    chunk = Chunk.from_rows(COLUMNS, [row("A1", desc="bad \ud800 text")], "x.csv", 2)
    (result,) = MappingEngine(spec).run([chunk])
    assert isinstance(result, RejectedInvoice)
    (failure,) = result.failures
    assert (failure.field_path, failure.rule, failure.source_column, failure.value) == (
        "invoice_lines.0.line_description", "text_encoding", "desc", "bad \\ud800 text",
    )  # fmt: skip
