"""One entry per invoice: problems of one cause collapsed, two voices of hints that never paper
over missing data, the amount at risk per currency, the worklist grouped by reason."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from pipeline.failures import InvoiceFacts
from pipeline.report import write_reports
from pipeline.report.invoices import amount_at_risk, by_reason, collapse, invoice_entries
from pipeline.report.voices import ap_hint, author_hint
from pipeline.staging.ledger import LedgerEntry
from tests.report.helpers import failure, make_run, stored

CURRENCY_FIELDS = [
    "total_amount.currency",
    *(f"invoice_lines.{n}.unit_price.currency" for n in range(18)),
]


def _bad_currency(key: str = "INV-7") -> list:  # type: ignore[type-arg]
    return [
        failure(
            "mapping",
            "currency",
            f"{path}: 'XXY' is not an ISO 4217 code",
            field_path=path,
            source_column="currency",
            value="XXY",
            source_key=key,
        )
        for path in CURRENCY_FIELDS
    ]


def _entry(key: str, total: str | None, currency: str | None) -> LedgerEntry:
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    return LedgerEntry(
        "acme_ap", key, "open", "mapping", InvoiceFacts("N-" + key, "V1", "Acme", "2025-02-01",
        total, currency), moment, moment, 1, 2, 2, None, None, None, None, (),
    )  # fmt: skip


def test_one_bad_currency_column_is_one_problem_listing_its_fields() -> None:
    (problem,) = collapse(_bad_currency())
    assert problem.fields == tuple(CURRENCY_FIELDS)
    assert (problem.source_column, problem.value) == ("currency", "XXY")
    assert (
        problem.ap_hint == "currency (XXY) is not a currency code (ISO 4217, e.g. EUR): correct it"
    )
    first = problem.message
    assert problem.text == f"{first} (19 fields: {', '.join(CURRENCY_FIELDS[:6])} …)"
    assert problem.brief == f"{first} (19 fields)"  # the terminal's narrow column


def test_a_problem_of_one_field_is_its_message_alone() -> None:
    (problem,) = collapse(_bad_currency()[:1])
    assert problem.text == problem.brief == problem.message


def test_a_missing_value_is_fixed_in_the_erp_never_given_a_default() -> None:
    missing = failure(
        "mapping", "required", "supplier_id: missing", field_path="supplier_id",
        source_column="vendor_id", source_key="INV-8",
    )  # fmt: skip
    assert ap_hint(missing) == "vendor_id is empty: fill it in"
    assert author_hint(missing) is None
    unmapped = failure("validation", "schema:string_too_short", "x", field_path="supplier_id")
    assert "default" not in (author_hint(unmapped) or "")
    refused = failure(
        "appzen", "appzen_400", "supplier_id: 'V9' is not a supplier", http_status=400
    )
    assert ap_hint(refused).startswith("correct in the ERP what AppZen's message names")
    assert (author_hint(refused) or "").startswith("only if the field AppZen names is filled by")


def test_amount_at_risk_per_currency_and_grouping_by_reason() -> None:
    failures = [stored(f) for f in [*_bad_currency("A"), *_bad_currency("B")]]
    failures.append(stored(failure("appzen", "appzen_400", "no", http_status=400, source_key="C")))
    ledger = {
        "A": _entry("A", "100.50", "EUR"),
        "B": _entry("B", None, None),
        "C": _entry("C", "20.00", "EUR"),
    }
    carried = [_entry("D", "7", "USD")]
    entries = invoice_entries(failures, ledger, carried)
    assert [entry.key for entry in entries] == ["A", "B", "C", "D"]
    assert amount_at_risk(entries) == ([("EUR", Decimal("120.50")), ("USD", Decimal(7))], 1)
    groups = by_reason(entries)
    reason, group = groups[0]
    assert (reason, [e.key for e in group]) == ("An unknown currency", ["A", "B"])


def test_the_page_lists_invoices_and_the_csv_keeps_one_row_per_failure(tmp_path: Path) -> None:
    failures = [stored(f) for f in _bad_currency("A")]
    paths = write_reports(
        make_run(status="succeeded"), failures, tmp_path, ledger={"A": _entry("A", "1.00", "EUR")}
    )
    page = paths.html.read_text("utf-8")
    assert "1 invoice not in AppZen" in page
    assert 'class="status-amber">succeeded with 1 failed invoice' in page
    assert "19 fields: total_amount.currency, invoice_lines.0.unit_price.currency" in page
    assert "Amount at risk: EUR 1.00" in page
    lines = paths.csv.read_text("utf-8-sig").splitlines()
    assert len(lines) == 1 + len(CURRENCY_FIELDS)
    assert all("N-A" in line for line in lines[1:])
