"""AP pre-flight checks (``checks:``): each finding of issue 15 refused (error) or noted (warning),
with its place; levels and options as the mapping declares them."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.mapping import MappedInvoice, MappingEngine, MappingSpec, RejectedInvoice, seen
from pipeline.mapping.checks import _line_tax, _lines_tax, invoice_number_key
from pipeline.mapping.loader import MappingFileError, load_mapping
from tests.mapping.conftest import COLUMNS, MINIMAL, Load, Write, chunk, row

TODAY = date(2026, 12, 3)
TYPED = MINIMAL.replace("  supplier_id: sup\n", "  supplier_id: sup\n  invoice_type: typ\n")
TYPED_COLUMNS = [*COLUMNS, "typ"]


def _run(spec: MappingSpec, rows: list[list[object]], columns: list[str] = COLUMNS) -> list[object]:
    return list(MappingEngine(spec, today=TODAY).run([chunk(rows, columns)]))


def _one(spec: MappingSpec, values: list[object], columns: list[str] = COLUMNS) -> object:
    (result,) = _run(spec, [values], columns)
    return result


def _rules(result: object) -> list[tuple[str, str, str | None]]:
    failures = result.failures if isinstance(result, RejectedInvoice) else result.warnings  # type: ignore[attr-defined]
    return [(f.stage, f.rule, f.field_path) for f in failures]


def test_a_clean_invoice_passes_every_check(load: Load) -> None:
    result = _one(load(TYPED), [*row("A1"), "INVOICE"], TYPED_COLUMNS)
    assert isinstance(result, MappedInvoice)
    assert result.warnings == ()


def test_a_negative_total_on_an_invoice_is_refused(load: Load) -> None:
    values = [*row("A1", total="-10.00", price="-5.00", amount="-10.00"), "INVOICE"]
    result = _one(load(TYPED), values, TYPED_COLUMNS)
    assert isinstance(result, RejectedInvoice)
    (failure,) = result.failures
    assert (failure.stage, failure.rule, failure.field_path) == (
        "check",
        "check:sign",
        "total_amount.amount",
    )
    assert failure.message == "an INVOICE with a negative total_amount (-10.00)"
    assert (failure.source_location, failure.source_column, failure.value) == (
        "x.csv:2",
        "total",
        "-10.00",
    )


def test_a_negative_quantity_on_an_invoice_is_refused(load: Load) -> None:
    values = [*row("A1", qty="-1", price="-10.00"), "INVOICE"]
    result = _one(load(TYPED), values, TYPED_COLUMNS)
    assert _rules(result) == [("check", "check:sign", "invoice_lines.0.quantity")]
    assert result.failures[0].message == (  # type: ignore[attr-defined]
        "invoice_lines.0: a negative quantity (-1) on an INVOICE"
    )


def test_credit_note_signs_follow_the_declared_convention(load: Load) -> None:
    negative = [*row("C1", total="10.00"), "CREDIT_NOTE"]
    assert _rules(_one(load(TYPED), negative, TYPED_COLUMNS)) == [
        ("check", "check:sign", "total_amount.amount")
    ]
    printed = load(TYPED + "checks: {sign: {credit_notes: positive}}\n")
    assert isinstance(_one(printed, negative, TYPED_COLUMNS), MappedInvoice)
    credit = [*row("C1", total="-10.00", qty="-2", amount="-10.00"), "CREDIT_NOTE"]
    assert isinstance(_one(load(TYPED), credit, TYPED_COLUMNS), MappedInvoice)


def test_a_header_total_that_does_not_add_up_is_refused(load: Load) -> None:
    rows = [row("A1", total="1.00", qty="1", price="4000.00", amount="4000.00")]
    rows.append(row("A1", qty="1", price="481.73", amount="481.73"))
    (result,) = _run(load(MINIMAL), rows)
    assert isinstance(result, RejectedInvoice)
    (failure,) = result.failures
    assert failure.rule == "check:header_total"
    assert failure.message == "total_amount 1.00 EUR does not add up: the lines sum to 4481.73"
    assert "includes" in (failure.hint or "")


def test_the_header_total_may_hold_tax_and_freight(load: Load) -> None:
    text = MINIMAL.replace(
        "  total_amount: {amount: total, currency: cur}\ninvoice_lines",
        "  total_amount: {amount: total, currency: cur}\n"
        "  vat_amount: {amount: vat, currency: cur}\n"
        "  shipping_handling_amount: {amount: freight, currency: cur}\ninvoice_lines",
    )
    columns = [*COLUMNS, "vat", "freight"]
    auto = load(text)
    gross = [*row("A1", total="16.90"), "1.90", "5.00"]
    assert isinstance(_one(auto, gross, columns), MappedInvoice)
    net = [*row("A1", total="15.00"), "1.90", "5.00"]  # lines + freight: lines taken as gross
    assert isinstance(_one(auto, net, columns), MappedInvoice)
    strict = load(text + "checks: {header_total: {includes: [tax, freight]}}\n")
    assert _rules(_one(strict, net, columns)) == [
        ("check", "check:header_total", "total_amount.amount")
    ]
    assert isinstance(_one(strict, gross, columns), MappedInvoice)


def test_line_tax_counts_when_the_header_has_none(load: Load) -> None:
    text = MINIMAL.replace(
        "  total_amount: {amount: amount, currency: cur}",
        "  total_amount: {amount: amount, currency: cur}\n"
        "  line_vat_breakdown:\n"
        "    - {code: {const: V19}, vat_amount: {amount: vat, currency: cur}}",
    )
    result = _one(load(text), [*row("A1", total="11.90"), "1.90"], [*COLUMNS, "vat"])
    assert isinstance(result, MappedInvoice)


def test_quantity_times_unit_price_must_make_the_line_amount(load: Load) -> None:
    result = _one(load(MINIMAL), row("A1", qty="3"))
    path = "invoice_lines.0.total_amount.amount"
    assert _rules(result) == [("check", "check:line_amount", path)]
    failure = result.failures[0]  # type: ignore[attr-defined]
    assert failure.message == (
        "invoice_lines.0: quantity 3 * unit price 5.00 = 15.00, but the line total is 10.00"
    )
    assert (failure.source_column, failure.source_location) == ("amount", "x.csv:2")
    rounded = row("A1", qty="3", price="3.335", amount="10.01", total="10.01")  # 10.005: 1 cent
    assert isinstance(_one(load(MINIMAL), rounded), MappedInvoice)


@pytest.mark.parametrize(
    ("currency", "amount", "fits"),
    [
        ("JPY", "687.82", False),
        ("JPY", "688", True),
        ("CHF", "100.005", False),
        ("CHF", "100.000", True),  # trailing zeros are no places
        ("BHD", "100.005", True),
        ("BHD", "100.0005", False),
        ("XAU", "1.23456", True),  # no minor unit in ISO 4217: not checked
    ],
)
def test_amounts_fit_the_currencys_minor_units(
    load: Load, currency: str, amount: str, fits: bool
) -> None:
    values = row("A1", cur=currency, total=amount, qty="1", price=amount, amount=amount)
    result = _one(load(MINIMAL), values)
    if fits:
        assert isinstance(result, MappedInvoice), result
        return
    assert isinstance(result, RejectedInvoice)
    assert {f.rule for f in result.failures} == {"check:minor_units"}
    assert result.failures[0].message == (
        f"total_amount: {amount} {currency} has more decimal places than {currency} has "
        f"({ {'JPY': 0, 'CHF': 2, 'BHD': 3}[currency] }, ISO 4217)"
    )


def test_one_currency_per_invoice(load: Load) -> None:
    rows = [row("A1", total="20.00"), row("A1", cur="USD")]
    (result,) = _run(load(MINIMAL), rows)
    assert _rules(result) == [
        ("check", "check:one_currency", "invoice_lines.1.unit_price.currency")
    ]
    assert result.failures[0].message == (  # type: ignore[attr-defined]
        "the invoice mixes currencies: EUR (total_amount) and USD (invoice_lines.1.unit_price)"
    )
    assert result.failures[0].source_location == "x.csv:3"  # type: ignore[attr-defined]


def test_an_invoice_date_years_ahead_is_refused(load: Load) -> None:
    result = _one(load(MINIMAL), row("A1", date="2099-01-01"))
    assert _rules(result) == [("check", "check:invoice_date", "invoice_date")]
    assert result.failures[0].message == (  # type: ignore[attr-defined]
        "invoice_date 2099-01-01 is more than 90 days ahead (after 2027-03-03)"
    )
    assert _rules(_one(load(MINIMAL), row("A1", date="1900-01-01"))) == [
        ("check", "check:invoice_date", "invoice_date")
    ]
    near = load(MINIMAL + "checks: {invoice_date: {max_days_ahead: 0}}\n")
    assert _rules(_one(near, row("A1", date="2026-12-04")))[0][1] == "check:invoice_date"
    assert isinstance(_one(near, row("A1", date="2026-12-03")), MappedInvoice)


def test_a_supplier_invoice_number_twice_is_warned_and_sent(load: Load) -> None:
    rows = [row("A1"), row("A2"), row("A3", sup="S2")]
    spec = load(MINIMAL.replace("invoice_number: inv", "invoice_number: {const: INV-0042}"))
    first, second, other = _run(spec, rows)
    assert isinstance(first, MappedInvoice)
    assert first.warnings == ()
    assert isinstance(second, MappedInvoice)  # sent: AppZen audits duplicates too
    (warning,) = second.warnings
    assert (warning.stage, warning.rule, warning.field_path, warning.source_location) == (
        "warning",
        "check:duplicate_number",
        "invoice_number",
        "x.csv:3",
    )
    assert warning.message == (
        "supplier S1's invoice number INV-0042 is also the invoice at x.csv:2 (another key): "
        "a duplicate payment?"
    )
    assert isinstance(other, MappedInvoice)
    assert other.warnings == ()  # another supplier's number


def test_a_supplier_invoice_number_moved_to_the_files_is_still_found(
    load: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past :data:`~pipeline.mapping.seen.RECENT` numbers (2 here) the first one lives in the
    sorted digests and the temporary files: the duplicate is found and named as before."""
    monkeypatch.setattr(seen, "RECENT", 2)
    rows = [row("A1"), row("X1", sup="S2"), row("X2", sup="S3"), row("A2")]
    spec = load(MINIMAL.replace("invoice_number: inv", "invoice_number: {const: INV-0042}"))
    results = _run(spec, rows)
    assert all(isinstance(result, MappedInvoice) for result in results)
    assert [w.message for r in results[:3] for w in r.warnings] == []  # type: ignore[attr-defined]
    (warning,) = results[3].warnings  # type: ignore[attr-defined]
    assert (warning.rule, warning.source_location) == ("check:duplicate_number", "x.csv:5")
    assert "is also the invoice at x.csv:2 (another key)" in warning.message


def test_a_duplicate_number_at_level_error_stops_the_second(load: Load) -> None:
    spec = load(MINIMAL.replace("invoice_number: inv", "invoice_number: {const: inv 42}") + (
        "checks: {duplicate_number: error}\n"
    ))  # fmt: skip
    first, second = _run(spec, [row("A1"), row("A2")])
    assert isinstance(first, MappedInvoice)
    assert _rules(second) == [("check", "check:duplicate_number", "invoice_number")]


def test_invoice_numbers_compare_without_case_punctuation_or_leading_zeros() -> None:
    assert invoice_number_key("INV-0042") == invoice_number_key("inv 42") == "inv42"
    assert invoice_number_key("0042") == invoice_number_key("42") == "42"
    assert invoice_number_key("INV-0042") != invoice_number_key("INV-0043")
    assert invoice_number_key("100/2024") == "1002024"


def test_an_absent_supplier_is_reported_as_absent_not_blank(load: Load) -> None:
    text = MINIMAL + "checks: {supplier: {reference: vendor_ref}}\n"
    columns = [*COLUMNS, "vendor_ref"]
    absent, blank = _run(
        load(text), [[*row("A1", sup=None), "V-77"], [*row("A2", sup=None), ""]], columns
    )
    assert isinstance(absent, RejectedInvoice)
    (failure,) = absent.failures
    assert (failure.stage, failure.rule, failure.field_path, failure.source_column) == (
        "check",
        "check:supplier",
        "supplier_id",
        "vendor_ref",
    )
    assert failure.message == (
        "supplier 'V-77' (column vendor_ref) is absent: the invoice points at a supplier the "
        "source has no supplier row for"
    )
    assert [f.rule for f in blank.failures] == ["required"]  # type: ignore[attr-defined]
    assert "is blank" in blank.failures[0].message  # type: ignore[attr-defined]


def test_a_warning_level_sends_the_invoice_with_the_finding(load: Load) -> None:
    spec = load(MINIMAL + "checks: {line_amount: warning, header_total: off}\n")
    result = _one(spec, row("A1", qty="3"))
    assert isinstance(result, MappedInvoice)
    assert _rules(result) == [
        ("warning", "check:line_amount", "invoice_lines.0.total_amount.amount")
    ]
    assert json.loads(result.payload)["invoice_lines"][0]["quantity"] == 3


def test_off_turns_a_check_off(load: Load) -> None:
    spec = load(MINIMAL + "checks: {invoice_date: off}\n")
    assert isinstance(_one(spec, row("A1", date="2099-01-01")), MappedInvoice)


def test_errors_come_first_then_warnings(load: Load) -> None:
    spec = load(MINIMAL + "checks: {line_amount: warning}\n")
    result = _one(spec, row("A1", qty="3", total="1.00"))
    assert [f.stage for f in result.failures] == ["check", "warning"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        (
            "{sign: warn}",
            "checks.sign.level: Input should be 'error', 'warning' or 'off'",
        ),
        (
            "{supplier: warning}",
            "checks.supplier.level: Input should be 'error' or 'off'",
        ),
        (
            "{line_amount: {includes: [tax]}}",
            "checks: line_amount takes no `includes:` (only header_total does)",
        ),
        ("{totals: error}", "checks.totals: unknown key 'totals'"),
    ],
)
def test_a_bad_checks_section_is_refused_with_its_place(
    write: Write, checks: str, message: str
) -> None:
    path: Path = write(MINIMAL + f"checks: {checks}\n")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert message in str(caught.value)


_amounts = st.one_of(
    st.none(),
    st.sampled_from([Decimal("0"), Decimal("0.00"), Decimal("38.00"), Decimal("1E+2")]),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
_money = st.one_of(
    st.none(), st.just({}), st.builds(lambda amount: {"amount": amount}, _amounts)
).map(lambda money: {k: v for k, v in money.items() if v is not None} if money else money)
_entry = st.fixed_dictionaries({}, optional={"vat_amount": _money, "code": st.just("V")})
_line = st.fixed_dictionaries(
    {},
    optional={
        "tax_amount": _money,
        "line_vat_amount": _money,
        "line_vat_breakdown": st.one_of(st.none(), st.lists(_entry, max_size=3)),
    },
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_line, max_size=6))
def test_the_lines_tax_is_the_sum_of_each_lines_tax(lines: list[dict[str, object]]) -> None:
    """The lines' tax (read in place for the usual one-VAT-entry line) is ``sum()`` of every
    line's tax from ``Decimal(0)``: the same value and the same exponent."""
    taxes = [tax for line in lines if (tax := _line_tax(line)) is not None]
    expected = sum(taxes, Decimal(0)) if taxes else None
    found = _lines_tax(lines)
    assert (found, repr(found)) == (expected, repr(expected))
