"""The engine: rows → invoices, failures collected per invoice, grouping across chunks."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from pipeline.appzen.models import ErrorData, payload_json
from pipeline.extract.base import Chunk
from pipeline.mapping import (
    MappedInvoice,
    MappingEngine,
    MappingError,
    MappingSpec,
    RejectedInvoice,
)
from pipeline.mapping.identities import HOLD_BACK
from tests.mapping.conftest import COLUMNS, MINIMAL, Load, chunk, mapped, rejected, row, run


def test_one_invoice_is_mapped_validated_and_serialized(load: Load) -> None:
    spec = load(MINIMAL)
    (result,) = run(spec, [chunk([row("A1")])])
    assert isinstance(result, MappedInvoice)
    assert result.key == "A1"
    assert result.location == "x.csv:2"
    assert result.payload == (
        b'{"invoice_id":"A1","invoice_number":"A1","invoice_date":"2024-12-31T00:00:00Z",'
        b'"entity_id":"E1","supplier_id":"S1","total_amount":{"amount":10.00,"currency":"EUR"},'
        b'"invoice_lines":[{"line_number":1,"line_description":"Widget","quantity":2,'
        b'"unit_price":{"amount":5.00,"currency":"EUR"},"total_amount":{"amount":10.00,'
        b'"currency":"EUR"}}]}'
    )
    assert result.payload == payload_json(result.invoice)
    assert result.payload_hash == hashlib.sha256(result.payload).hexdigest()
    assert (result.erp_status, result.erp_error, result.watermark) == (None, None, None)


def test_money_keeps_its_scale_from_source_to_payload_bytes(load: Load) -> None:
    spec = load(MINIMAL)
    rows = [
        row("A1", total="200.00", price=Decimal("200.00"), amount=Decimal("200.00"), qty="1.000"),
        row("A2", total="0.10", price="1E+2", amount="100"),
    ]
    first, second = run(spec, [chunk(rows)])
    assert isinstance(first, MappedInvoice)
    assert b'"total_amount":{"amount":200.00,' in first.payload
    assert b'"quantity":1.000,"unit_price":{"amount":200.00,' in first.payload
    assert first.invoice.total_amount.amount.as_tuple().exponent == -2
    assert json.loads(first.payload, parse_float=Decimal)["total_amount"]["amount"] == Decimal(
        "200.00"
    )
    assert isinstance(second, RejectedInvoice)  # "1E+2" is text with an exponent: not a number
    assert [f.rule for f in second.failures] == ["decimal"]


def test_european_numbers_and_dates(load: Load) -> None:
    text = MINIMAL.replace(
        "invoice_key: inv",
        'invoice_key: inv\nformats: {decimal_separator: ",", thousands_separator: ".", '
        'date_formats: ["%d.%m.%Y"]}',
    )
    spec = load(text)
    (result,) = run(
        spec, [chunk([row(date="31.12.2024", total="1.234,56", price="617,28", amount="1.234,56")])]
    )
    assert isinstance(result, MappedInvoice)
    assert result.invoice.total_amount.amount == Decimal("1234.56")
    assert b'"amount":1234.56' in result.payload
    assert result.invoice.invoice_date == "2024-12-31T00:00:00Z"


def test_an_invoice_split_across_chunks_is_carried_over(load: Load) -> None:
    spec = load(MINIMAL)
    chunks = [
        chunk([row("A1"), row("A2", desc="a", total="30.00")], first_row=2),
        chunk([row("A2", desc="b")], first_row=4),
        chunk([row("A2", desc="c", price="x"), row("A3")], first_row=5),
    ]
    results = run(spec, chunks)
    assert [r.key for r in results] == ["A1", "A2", "A3"]
    middle = results[1]
    assert isinstance(middle, RejectedInvoice)
    assert middle.location == "x.csv:3"
    (failure,) = middle.failures
    assert (failure.field_path, failure.source_location, failure.value) == (
        "invoice_lines.2.unit_price.amount", "x.csv:5", "x",
    )  # fmt: skip
    fixed = run(spec, [chunks[0], chunks[1], chunk([row("A2", desc="c"), row("A3")], first_row=5)])
    invoice = fixed[1]
    assert isinstance(invoice, MappedInvoice)
    assert [line.line_description for line in invoice.invoice.invoice_lines] == ["a", "b", "c"]
    assert [line.line_number for line in invoice.invoice.invoice_lines] == [1, 2, 3]


def test_every_failure_of_an_invoice_is_reported_and_other_invoices_go_on(load: Load) -> None:
    spec = load(MINIMAL)
    rows = [
        row("A1"),
        row("A2", date="2024-02-30", sup="", cur="EURO"),
        row("A2", qty="two"),
        row("A3"),
    ]
    results = run(spec, [chunk(rows)])
    assert [type(r).__name__ for r in results] == [
        "MappedInvoice",
        "RejectedInvoice",
        "MappedInvoice",
    ]
    bad = results[1]
    assert isinstance(bad, RejectedInvoice)
    found = {
        (f.field_path, f.rule, f.source_column, f.source_location, f.value) for f in bad.failures
    }
    assert found == {
        ("invoice_date", "date_format", "date", "x.csv:3", "2024-02-30"),
        ("supplier_id", "required", "sup", "x.csv:3", None),
        ("total_amount.currency", "currency", "cur", "x.csv:3", "EURO"),
        ("invoice_lines.0.unit_price.currency", "currency", "cur", "x.csv:3", "EURO"),
        ("invoice_lines.0.total_amount.currency", "currency", "cur", "x.csv:3", "EURO"),
        ("invoice_lines.1.quantity", "decimal", "qty", "x.csv:4", "two"),
    }
    assert all(f.stage == "mapping" and f.source_key == "A2" for f in bad.failures)
    required = next(f for f in bad.failures if f.rule == "required")
    assert required.message == "supplier_id: required by AppZen, but column sup is blank"
    assert required.hint == "fill column sup in the source: header.supplier_id needs a value"


def test_schema_failures_are_traced_back_to_the_source_column(load: Load) -> None:
    text = MINIMAL.replace("  supplier_id: sup", "  supplier_id: sup\n  invoice_type: type") + (
        "  line_number: line\n"
    )
    spec = load(text)
    columns = [*COLUMNS, "type", "line"]
    rows = [[*row("A1"), "BILL", "1"], [*row("A1"), "BILL", "-4"]]
    (result,) = run(spec, [chunk(rows, columns)])
    assert isinstance(result, RejectedInvoice)
    by_path = {f.field_path: f for f in result.failures}
    assert set(by_path) == {"invoice_type", "invoice_lines.1.line_number"}
    literal = by_path["invoice_type"]
    assert (literal.stage, literal.rule, literal.source_column, literal.value) == (
        "validation", "schema:literal_error", "type", "BILL",
    )  # fmt: skip
    assert literal.source_location == "x.csv:2"
    line = by_path["invoice_lines.1.line_number"]
    assert (line.rule, line.source_column, line.source_location) == (
        "schema:greater_than_equal", "line", "x.csv:3",
    )  # fmt: skip


def test_a_missing_column_stops_everything_up_front(load: Load) -> None:
    spec = load(MINIMAL.replace("supplier_id: sup", "supplier_id: supp"))
    engine = MappingEngine(spec)
    with pytest.raises(MappingError) as caught:
        engine.check_columns(COLUMNS, source="x.csv")
    assert caught.value.errors == [
        f"{spec.file}:8 header.supplier_id.column: no column 'supp' in x.csv; did you mean 'sup'?"
    ]
    results = engine.run([chunk([row("A1")])])
    with pytest.raises(MappingError, match="no column 'supp'"):
        next(results)


def test_a_later_chunk_without_a_needed_column_stops_the_run(load: Load) -> None:
    spec = load(MINIMAL)
    other = [name if name != "sup" else "vendor" for name in COLUMNS]
    first = chunk([row("A1"), row("A2")])
    results = MappingEngine(spec).run([first, chunk([row("A3")], other, "y.csv")])
    with pytest.raises(MappingError, match=r"y\.csv has no column 'sup'"):
        list(results)  # the invoices waiting in the engine (A1, A2) never leave it


def test_rows_of_an_invoice_must_be_contiguous(load: Load) -> None:
    spec = load(MINIMAL)
    results = run(spec, [chunk([row("A1"), row("A2"), row("A1")])])
    assert [type(r).__name__ for r in results] == [
        "RejectedInvoice",
        "MappedInvoice",
        "RejectedInvoice",
    ]  # neither part of the split invoice is sent
    (first,) = results[0].failures  # type: ignore[union-attr]
    (failure,) = results[2].failures  # type: ignore[union-attr]
    assert (first.rule, failure.rule) == ("contiguity", "contiguity")
    assert (first.source_location, failure.source_location) == ("x.csv:2", "x.csv:4")
    assert "at x.csv:4" in first.message
    assert "at x.csv:2" in failure.message
    assert failure.hint == "list all rows of an invoice together: ORDER BY the invoice key"


def test_blank_keys_reject_their_rows(load: Load) -> None:
    spec = load(MINIMAL)
    results = run(spec, [chunk([row(" "), row(""), row("A1")])])
    assert [r.key for r in results] == [None, None, "A1"]
    first = results[0]
    assert isinstance(first, RejectedInvoice)
    assert first.location == "x.csv:2"
    assert first.failures[0].message == "the invoice key column inv is blank"


def test_key_cells_are_read_exactly_and_numbers_as_text(load: Load) -> None:
    spec = load(MINIMAL)
    rows = [row(12), row(Decimal("12.00")), row(13.0), row(" 14 ")]
    results = run(spec, [chunk(rows)])
    assert [r.key for r in results] == ["12", "13", " 14 "]
    assert json.loads(results[2].payload)["invoice_id"] == " 14 "  # type: ignore[union-attr]


def test_too_many_lines_is_refused_without_keeping_them(load: Load) -> None:
    spec = load(MINIMAL + "max_lines_per_invoice: 3\n")
    results = run(spec, [chunk([row("A1")] * 2), chunk([row("A1")] * 3), chunk([row("A2")])])
    assert [r.key for r in results] == ["A1", "A2"]
    (failure,) = results[0].failures  # type: ignore[union-attr]
    assert failure.rule == "too_many_lines"
    assert failure.message == "invoice A1 has 5 lines, more than max_lines_per_invoice (3)"


def test_status_error_and_watermark(load: Load) -> None:
    text = MINIMAL.replace(
        "invoice_key: inv",
        "invoice_key: inv\nwatermark_column: upd\n"
        "status: {column: st, error: {message: msg, status: code, exception: exc}}",
    )
    spec = load(text)
    columns = [*COLUMNS, "upd", "st", "msg", "code", "exc"]
    rows = [
        [*row("A1", total="20.00"), datetime(2024, 1, 2), "POSTED", None, None, None],
        [*row("A1"), datetime(2024, 3, 1), "POSTED", None, None, None],
        [*row("A2"), datetime(2024, 1, 1), "PARKED", "Vendor blocked", "F5 201", "BlockedError"],
        [*row("A3"), None, "", " ", "x", "y"],
    ]
    first, second, third = mapped(run(spec, [chunk(rows, columns)]))
    assert (first.erp_status, first.erp_error, first.watermark) == (
        "POSTED",
        None,
        datetime(2024, 3, 1),
    )
    assert second.erp_error == ErrorData(
        message="Vendor blocked", status="F5 201", exception="BlockedError"
    )
    assert (third.erp_status, third.erp_error, third.watermark) == (None, None, None)


def test_value_sources_defaults_and_null_handling(load: Load) -> None:
    text = MINIMAL.replace(
        "  supplier_id: sup",
        """  supplier_id: {column: sup, default: UNKNOWN}
  purchase_order_number: {template: "{pre}-{po}"}
  invoice_type:
    column: type
    map: {STANDARD: INVOICE, CREDIT: CREDIT_NOTE, VOID: null}
    others: {value: DEBIT_NOTE}
  invoice_status: {column: st, transform: [collapse_spaces, upper]}
  requestor: {column: req, on_null: error}
  payment_term_id: {column: terms, map: {N30: NET30}, others: keep}
  site_id: {column: terms, map: {N30: S1}, others: omit}
  po_policy: {po_backed: {column: backed, map: {J: true, N: false}}}
  remit_to_bank_info: {bank_acct_last4: {column: iban, transform: [remove_spaces, last4]}}
  custom_json:
    columns: [pre]
    fields: {reference: {template: "REF {po}"}}
  extra:
    accounting_date_override: {column: date, type: datetime}""",
    )
    spec = load(text)
    columns = [*COLUMNS, "pre", "po", "type", "st", "req", "terms", "backed", "iban"]
    full = [
        *row("A1", sup="", qty="-2", amount="-10.00", total="-10.00"),  # a credit note: <= 0
        "PO",
        "7",
        "CREDIT",
        " paid  in full",
        "Ann",
        "N30",
        "J",
        "DE89 3704 0044 0532 0130 00",
    ]
    sparse = [*row("A2"), "", "8", "OTHER", "", "", "X", "", ""]
    void = [*row("A3"), "PO", "9", "VOID", "", "Bob", "", "N", ""]
    results = run(spec, [chunk([full, sparse, void], columns)])
    first = results[0]
    assert isinstance(first, MappedInvoice)
    sent = json.loads(first.payload)
    assert sent["supplier_id"] == "UNKNOWN"
    assert sent["purchase_order_number"] == "PO-7"
    assert sent["invoice_type"] == "CREDIT_NOTE"
    assert sent["invoice_status"] == "PAID IN FULL"
    assert sent["payment_term_id"] == "NET30"
    assert sent["site_id"] == "S1"
    assert sent["po_policy"] == {"po_backed": True}
    assert sent["remit_to_bank_info"] == {"bank_acct_last4": "3000"}
    assert sent["custom_json"] == {"pre": "PO", "reference": "REF 7"}
    assert sent["accounting_date_override"] == "2024-12-31T00:00:00Z"
    second = results[1]
    assert isinstance(second, RejectedInvoice)
    assert [(f.field_path, f.rule) for f in second.failures] == [("requestor", "required")]
    third = results[2]
    assert isinstance(third, MappedInvoice)
    sent = json.loads(third.payload)
    assert "invoice_type" not in sent
    assert "purchase_order_number" in sent
    assert "site_id" not in sent
    assert "payment_term_id" not in sent
    assert sent["po_policy"] == {"po_backed": False}


def test_unmapped_codes_are_failures_unless_others_says(load: Load) -> None:
    text = MINIMAL.replace(
        "  supplier_id: sup",
        "  supplier_id: sup\n  invoice_type: {column: type, map: {STANDARD: INVOICE}}",
    )
    spec = load(text)
    (result,) = run(spec, [chunk([[*row("A1"), "standard"]], [*COLUMNS, "type"])])
    assert isinstance(result, RejectedInvoice)
    (failure,) = result.failures
    assert failure.rule == "value_map"
    assert failure.message == "invoice_type: code standard is not in the value map (STANDARD)"
    assert failure.hint == (
        "add standard to header.invoice_type.map, or set `others:` (keep, omit or {value: …})"
    )


def test_optional_objects_and_list_entries_appear_only_with_data(load: Load) -> None:
    text = MINIMAL.replace(
        "  supplier_id: sup",
        """  supplier_id: sup
  supplier_address: {address_line1: street, zip: zip, country: {const: DE}}
  documents:
    - uuid: doc1
    - uuid: doc2""",
    )
    spec = load(text)
    columns = [*COLUMNS, "street", "zip", "doc1", "doc2"]
    rows = [
        [*row("A1"), "", "", "", "d-2"],
        [*row("A2"), "Hauptstr. 1", "10115", "d-1", ""],
        [*row("A3"), "Hauptstr. 1", "", "", ""],
    ]
    first, second, third = run(spec, [chunk(rows, columns)])
    assert isinstance(first, MappedInvoice)
    assert isinstance(second, MappedInvoice)
    assert "supplier_address" not in json.loads(first.payload)
    assert json.loads(first.payload)["documents"] == [{"uuid": "d-2"}]
    assert json.loads(second.payload)["supplier_address"] == {
        "address_line1": "Hauptstr. 1", "country": "DE", "zip": "10115",
    }  # fmt: skip
    assert isinstance(third, RejectedInvoice)
    assert [f.field_path for f in third.failures] == ["supplier_address.zip"]


def test_segments_from_several_column_groups_and_per_row_header_lists(load: Load) -> None:
    segment = (
        "name: {{const: {0}}}, segment_type: {{const: {0}}}, "
        "appzen_segment_type: {{const: OTHER_SEGMENT}}, segment_name_id: {{const: {0}}}"
    )
    text = (
        MINIMAL.replace(
            "  supplier_id: sup",
            """  supplier_id: sup
  vat_breakdown:
    - {for_each_row: true, code: vat, rate: rate}""",
        )
        + f"""  segments:
    - {{code: gl, {segment.format("GL")}}}
    - {{code: cc, {segment.format("CC")}}}
"""
    )
    spec = load(text)
    columns = [*COLUMNS, "vat", "rate", "gl", "cc"]
    rows = [
        [*row("A1", total="30.00"), "V19", "19", "4000", "CC1"],
        [*row("A1"), "V7", "7", "4010", ""],
        [*row("A1"), "V19", "19", "4020", "CC2"],
    ]
    (result,) = run(spec, [chunk(rows, columns)])
    assert isinstance(result, MappedInvoice)
    sent = json.loads(result.payload)
    assert sent["vat_breakdown"] == [{"code": "V19", "rate": 19}, {"code": "V7", "rate": 7}]
    lines = sent["invoice_lines"]
    assert [[s["code"] for s in line["segments"]] for line in lines] == [
        ["4000", "CC1"], ["4010"], ["4020", "CC2"],
    ]  # fmt: skip


def test_multiply_and_sum_lines_are_exact(load: Load) -> None:
    text = MINIMAL.replace(
        "total_amount: {amount: total, currency: cur}\ninvoice_lines",
        "total_amount: {amount: {sum_lines: total_amount.amount}, currency: cur}\ninvoice_lines",
    ).replace(
        "total_amount: {amount: amount, currency: cur}",
        "total_amount: {amount: {multiply: [qty, price]}, currency: cur}",
    )
    spec = load(text)
    rows = [
        row("A1", qty="3", price="0.10", cur="BHD"),  # 3.375 fits a currency of 3 places
        row("A1", qty="1.5", price="2.25", cur="BHD"),
        row("A2", qty="x"),
    ]
    first, second = run(spec, [chunk(rows)])
    assert isinstance(first, MappedInvoice)
    assert [line.total_amount.amount for line in first.invoice.invoice_lines] == [
        Decimal("0.30"), Decimal("3.375"),
    ]  # fmt: skip
    assert b'"total_amount":{"amount":3.675,' in first.payload
    assert isinstance(second, RejectedInvoice)
    assert {f.field_path for f in second.failures} == {
        "invoice_lines.0.quantity", "invoice_lines.0.total_amount.amount",
    }  # fmt: skip


def test_scale_pads_and_refuses_extra_places(load: Load) -> None:
    text = MINIMAL.replace("amount: price,", "amount: {column: price, scale: 2},")
    spec = load(text)
    good_row = row("A1", price=Decimal("5.5"), amount="11.00", total="11.00")
    good, bad = run(spec, [chunk([good_row, row("A2", price="5.555")])])
    assert isinstance(good, MappedInvoice)
    assert b'"unit_price":{"amount":5.50,' in good.payload
    assert isinstance(bad, RejectedInvoice)
    assert bad.failures[0].rule == "scale"


def _joined_spec(load: Load) -> MappingSpec:
    text = MINIMAL.replace(
        "invoice_key: inv",
        "invoice_key: inv\nlines_source: {kind: csv, path: lines.csv}\nlines_key: ref",
    )
    return load(text)


HEADER = ["inv", "date", "sup", "total", "cur"]
LINES = ["ref", "desc", "qty", "price", "amount"]


def _head(key: str, **values: object) -> list[object]:
    return row(key, **values)[:5]


def _line(key: str, desc: str = "W", price: object = "5.00") -> list[object]:
    return [key, desc, "2", price, "10.00"]


def test_header_and_line_sources_are_merge_joined(load: Load) -> None:
    spec = _joined_spec(load)
    headers = [
        chunk([_head("A1", total="20.00"), _head("A2", total="20.00")], HEADER, "h.csv"),
        chunk([_head("A3", total="0.00"), _head("A4")], HEADER, "h.csv", 4),
    ]
    lines = [
        chunk([_line("A1", "a"), _line("A1", "b"), _line("A2", "c")], LINES, "l.csv"),
        chunk([_line("A2", "d"), _line("A4", "e", price="x")], LINES, "l.csv", 5),
    ]
    results = run(spec, headers, lines)
    assert [r.key for r in results] == ["A1", "A2", "A3", "A4"]
    a1, a2, a3, a4 = results
    assert isinstance(a1, MappedInvoice)
    assert isinstance(a2, MappedInvoice)
    assert isinstance(a3, MappedInvoice)
    assert [line.line_description for line in a2.invoice.invoice_lines] == ["c", "d"]
    assert a2.location == "h.csv:3"
    assert a3.invoice.invoice_lines == []
    assert isinstance(a4, RejectedInvoice)
    assert a4.failures[0].source_location == "l.csv:6"
    assert a4.failures[0].field_path == "invoice_lines.0.unit_price.amount"


def test_orphan_and_blank_key_line_rows_are_reported(load: Load) -> None:
    spec = _joined_spec(load)
    headers = [chunk([_head("A1"), _head("A3")], HEADER, "h.csv")]
    lines = [
        chunk(
            [_line("A0"), _line("A0"), _line("A1"), _line(""), _line("A3"), _line("A9")],
            LINES,
            "l.csv",
        )
    ]
    results = run(spec, headers, lines)
    summary = [(r.key, type(r).__name__, r.location) for r in results]
    assert summary == [
        ("A0", "RejectedInvoice", "l.csv:2"),
        ("A1", "MappedInvoice", "h.csv:2"),
        (None, "RejectedInvoice", "l.csv:5"),
        ("A3", "MappedInvoice", "h.csv:3"),
        ("A9", "RejectedInvoice", "l.csv:7"),
    ]
    orphan = results[0]
    assert isinstance(orphan, RejectedInvoice)
    assert orphan.failures[0].rule == "join"
    assert orphan.failures[0].message.startswith("2 line row(s) of invoice A0 have no header row")


def test_line_fields_may_read_header_columns(load: Load) -> None:
    spec = _joined_spec(load)
    headers = [chunk([_head("A1", cur="CHF")], HEADER, "h.csv")]
    lines = [chunk([_line("A1")], LINES, "l.csv")]
    (result,) = run(spec, headers, lines)
    assert isinstance(result, MappedInvoice)
    assert result.invoice.invoice_lines[0].unit_price.currency == "CHF"


def test_a_joined_mapping_needs_the_line_chunks(load: Load) -> None:
    spec = _joined_spec(load)
    with pytest.raises(MappingError, match="pass the line chunks"):
        run(spec, [chunk([_head("A1")], HEADER)])


def test_the_engine_streams(load: Load) -> None:
    spec = load(MINIMAL)
    pulled = 0

    def endless() -> Iterator[Chunk]:
        nonlocal pulled
        for number in itertools.count():
            pulled += 1
            yield chunk([row(f"K{number}")] * 3, first_row=2 + 3 * number)

    first = list(itertools.islice(MappingEngine(spec).run(endless()), 5))
    assert [r.key for r in first] == ["K0", "K1", "K2", "K3", "K4"]
    assert pulled == HOLD_BACK + 6  # results wait HOLD_BACK invoices (look-alike keys), no more


def test_rejected_rows_do_not_count_as_failures_of_other_invoices(load: Load) -> None:
    spec = load(MINIMAL)
    results = run(spec, [chunk([row("A1", price="bad"), row("A2")])])
    assert len(rejected(results)) == 1
    assert len(mapped(results)) == 1
    assert all(f.source_key == "A1" for f in rejected(results)[0].failures)


def test_joined_column_checks_use_each_source(load: Load) -> None:
    engine = MappingEngine(_joined_spec(load))
    engine.check_columns(HEADER)  # line columns unknown yet: only header fields are checked
    engine.check_columns(HEADER, LINES)
    with pytest.raises(MappingError) as caught:
        engine.check_columns(HEADER, ["ref", "desc", "qty", "price"], lines_source="l.csv")
    assert [error.split(" ", 1)[1] for error in caught.value.errors] == [
        "invoice_lines.total_amount.amount.column: no column 'amount' in l.csv or the source"
    ]


def test_a_product_that_cannot_be_exact_is_a_failure_not_a_rounding(load: Load) -> None:
    text = MINIMAL.replace(
        "total_amount: {amount: amount, currency: cur}",
        "total_amount: {amount: {multiply: [qty, price]}, currency: cur}",
    )
    spec = load(text)
    long_fraction = "0." + "3" * 61
    (result,) = run(spec, [chunk([row("A1", qty="3", price=long_fraction)])])
    assert isinstance(result, RejectedInvoice)
    assert [(f.field_path, f.rule) for f in result.failures] == [
        ("invoice_lines.0.total_amount.amount", "decimal")
    ]
