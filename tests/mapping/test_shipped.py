"""The shipped mappings against the real sources: the sample files and the sample ERP."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sample_erp.schema import drop_schema
from pipeline.mapping import MappedInvoice, RejectedInvoice, load_mapping, map_source

PROJECT = Path(__file__).resolve().parents[2]


def _results(name: str, erp_url: str | None = None, params: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    spec = load_mapping(PROJECT / "mappings" / f"{name}.yaml")
    return list(map_source(spec, params or {}, base_dir=PROJECT, erp_url=erp_url))


def test_flat_csv_maps_the_export_and_rejects_exactly_its_dirty_rows() -> None:
    results = _results("flat_csv")
    assert len(results) == 20
    bad = {r.key: r for r in results if isinstance(r, RejectedInvoice)}
    assert set(bad) == {"AP-2024-0107", "AP-2024-0113"}
    (date_failure,) = bad["AP-2024-0107"].failures
    assert (date_failure.rule, date_failure.source_column, date_failure.value) == (
        "date_format", "invoice_date", "31.02.2024",
    )  # fmt: skip
    assert date_failure.source_location == "samples/flat_ap_export.csv:21"
    (price_failure,) = bad["AP-2024-0113"].failures
    assert (price_failure.source_location, price_failure.value) == (
        "samples/flat_ap_export.csv:33",
        "n/a",
    )
    first = results[0]
    assert isinstance(first, MappedInvoice)
    assert first.erp_status == "PAID"
    sent = json.loads(first.payload, parse_float=Decimal)
    assert sent["total_amount"] == {"amount": Decimal("1260.27"), "currency": "EUR"}
    assert b'"amount":1260.27' in first.payload
    assert sent["vat_breakdown"] == [{"code": "V19", "rate": Decimal("19.00")}]
    total = sum(line.total_amount.amount for line in first.invoice.invoice_lines)
    assert total == Decimal("1059.05") == first.invoice.total_amount_excluding_vat.amount  # type: ignore[union-attr]


def test_flat_csv_keeps_non_ascii_and_multi_line_cells() -> None:
    text = b"".join(r.payload for r in _results("flat_csv") if isinstance(r, MappedInvoice))
    assert "Łódź Logistyka Sp. z o.o.".encode() in text
    assert b"Kopierpapier A4; 500 Blatt" in text
    assert "Wartung Kaffeemaschine\\nMärz 2024".encode() in text


def test_merchant_invoices_compute_line_and_invoice_totals() -> None:
    results = _results("merchant")
    assert len(results) == 10
    bad = [r for r in results if isinstance(r, RejectedInvoice)]
    assert [r.key for r in bad] == ["880106"]
    assert (
        bad[0].failures[0].source_location
        == "samples/merchant_invoices.json:invoices[6].invoiceItems[0]"
    )
    first = results[0]
    assert isinstance(first, MappedInvoice)
    lines = first.invoice.invoice_lines
    assert [line.total_amount.amount for line in lines] == [
        Decimal("876.48"),
        Decimal("5.42"),
        Decimal("196.10"),
    ]
    assert first.invoice.total_amount.amount == Decimal("1078.00")
    assert json.loads(first.payload)["invoice_lines"][0]["line_vat_breakdown"] == [{"rate": 25.0}]


def _sample_erp(url: str) -> None:
    report = generate(url, invoices=120, seed=7)
    results = _results("sample_erp", url)
    assert len(results) == report.invoices
    rejected = {r.key for r in results if isinstance(r, RejectedInvoice)}
    assert rejected == set(report.dirty_ids)
    mapped = [r for r in results if isinstance(r, MappedInvoice)]
    assert report.non_ascii <= {r.key for r in mapped}
    errors = {r.key: r.erp_error for r in mapped if r.erp_error is not None}
    assert set(errors) == report.erp_errors - set(report.dirty_ids)
    assert all(r.erp_status in {"PARKED", "APPROVED", "POSTED", "PAID"} for r in mapped)
    for result in mapped:
        lines = result.invoice.invoice_lines
        net = sum(line.total_amount.amount for line in lines)
        assert net == result.invoice.total_amount_excluding_vat.amount  # type: ignore[union-attr]
        assert result.invoice.total_amount.amount.as_tuple().exponent == -2
    latest = max(r.watermark for r in mapped)  # type: ignore[type-var]
    since = _results("sample_erp", url, {"since": latest})
    assert since == []


def test_sample_erp_on_sqlite(tmp_path: Path) -> None:
    _sample_erp(f"sqlite:///{tmp_path / 'erp.db'}")


def _server_database(base: str) -> str:
    name = f"map_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return name


def _drop_database(base: str, name: str) -> None:
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
    engine.dispose()


@pytest.mark.postgres
def test_sample_erp_on_postgresql() -> None:
    base = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    name = _server_database(base)
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        _sample_erp(url)
    finally:
        drop_schema(url)
        _drop_database(base, name)


@pytest.mark.mariadb
def test_sample_erp_on_mariadb() -> None:
    base = "mysql+pymysql://root@127.0.0.1:3306/test"
    name = _server_database(base)
    url = base.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    try:
        _sample_erp(url)
    finally:
        _drop_database(base, name)
