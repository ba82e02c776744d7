"""A morning's worklist as an AP analyst meets it: twelve invoices, four reasons, three
suppliers, three currencies, failing for between 0 and 45 days."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pipeline.failures import InvoiceFacts, RowFailure
from pipeline.report import ReportPaths, write_reports
from pipeline.staging.ledger import LedgerEntry
from pipeline.staging.records import StoredFailure
from tests.report.helpers import failure, make_run, stored

ACME = ("V100", "Acme Industrial GmbH")
GLOBEX = ("V200", "Globex Supplies Ltd")
INITECH = ("V300", "Initech Services")

# key, invoice number, supplier, invoice date, total, currency, failing since, problem
INVOICES = (
    ("5100000101", "AC-2025-0311", ACME, "2025-02-10", "1250.00", "EUR", "2025-03-01", "currency"),
    ("5100000102", "AC-2025-0312", ACME, "2025-02-11", "89.90", "EUR", "2025-02-27", "currency"),
    ("5100000103", "GX-88123", GLOBEX, "2025-01-30", "15400.00", "USD", "2025-02-20", "currency"),
    ("5100000104", "GX-88130", GLOBEX, "2025-02-02", "310.45", "USD", "2025-01-15", "currency"),
    ("5100000105", "IN/0045", INITECH, "2025-02-14", "7800.00", "GBP", "2025-03-01", "vendor"),
    ("5100000106", "IN/0046", INITECH, "2025-02-15", "45.00", "GBP", "2025-02-27", "vendor"),
    ("5100000107", "AC-2025-0298", ACME, "2025-01-20", "2200.00", "EUR", "2025-02-20", "vendor"),
    ("5100000108", "GX-88001", GLOBEX, "2025-01-05", "999.99", "USD", "2025-01-15", "appzen"),
    ("5100000109", "IN/0031", INITECH, "2024-12-28", "120.00", "GBP", "2025-01-15", "appzen"),
    ("5100000110", "AC-2025-0320", ACME, "2025-02-20", "18.50", "EUR", "2025-03-01", "appzen"),
    ("5100000111", "GX-88140", GLOBEX, "2025-02-21", "5600.00", "USD", "2025-02-27", "date"),
    ("5100000112", "AC-2025-0330", ACME, "2025-02-22", "730.00", "EUR", "2025-03-01", "date"),
)


def _failure(key: str, problem: str) -> RowFailure:
    if problem == "currency":
        return failure(
            "mapping", "currency", "total_amount.currency: 'EURO' is not an ISO 4217 code",
            field_path="total_amount.currency", source_column="waers", value="EURO",
            source_key=key,
        )  # fmt: skip
    if problem == "vendor":
        return failure(
            "mapping", "required", "supplier_id: no value", field_path="supplier_id",
            source_column="lifnr", source_key=key,
        )  # fmt: skip
    if problem == "appzen":
        return failure(
            "appzen", "appzen_400", "AppZen rejected the invoice: supplier is not active",
            http_status=400, error_code="17e3338d", source_key=key,
        )  # fmt: skip
    return failure(
        "mapping", "date_format", "invoice_date: 31.02.2025 is not a date",
        field_path="invoice_date", source_column="bldat", value="31.02.2025", source_key=key,
    )  # fmt: skip


def _ledger(row: tuple) -> LedgerEntry:  # type: ignore[type-arg]
    key, number, (supplier, name), day, total, currency, since, _ = row
    first = datetime.fromisoformat(since).replace(hour=5, tzinfo=UTC)
    last = datetime(2025, 3, 1, 5, tzinfo=UTC)
    facts = InvoiceFacts(number, supplier, name, day, total, currency)
    return LedgerEntry(
        "acme_ap", key, "open", "mapping", facts, first, last, 1, 42, 3, None, None, None, None
    )


def worklist_failures() -> list[StoredFailure]:
    """One failure per invoice of :data:`INVOICES`, in run 42."""
    return [stored(_failure(row[0], row[7])) for row in INVOICES]


def write_worklist(out_dir: Path, document_url: str | None = None) -> ReportPaths:
    """The reports of a run that succeeded with the twelve invoices failed."""
    ledger = {row[0]: _ledger(row) for row in INVOICES}
    return write_reports(
        make_run(status="succeeded"),
        worklist_failures(),
        out_dir,
        ledger=ledger,
        document_url=document_url,
    )
