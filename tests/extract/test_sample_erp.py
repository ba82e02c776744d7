"""The sample ERP: deterministic generation, exact amounts, a dirty report that is right, touches,
and the reference DDL kept in step with the SQLAlchemy tables."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex, CreateTable

from pipeline.devkit.sample_erp import (
    BAD_DATES,
    STATUSES,
    UNKNOWN_CURRENCY,
    GenerationReport,
    generate,
    invoice,
    invoice_line,
    metadata,
    supplier,
    touch,
)
from tests.databases import DIALECTS
from tests.extract.conftest import REPO, MakeDatabase

Tables = dict[str, list[dict[str, Any]]]
CURRENCIES = {"EUR", "USD", "GBP", "CHF"}


def _dump(url: str) -> Tables:
    """Every row of the three tables, in key order."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return {
                table.name: [
                    dict(row)
                    for row in connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    ).mappings()
                ]
                for table in (supplier, invoice, invoice_line)
            }
    finally:
        engine.dispose()


def _legacy_date(text: object) -> date | None:
    try:
        return datetime.strptime(str(text), "%d.%m.%Y").date()
    except ValueError:
        return None


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerationReport, Tables]:
    url = f"sqlite:///{tmp_path_factory.mktemp('erp') / 'erp.db'}"
    return generate(url, invoices=150, seed=7), _dump(url)


def test_the_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    first = generate(f"sqlite:///{tmp_path / 'a.db'}", invoices=40, seed=9)
    second = generate(f"sqlite:///{tmp_path / 'b.db'}", invoices=40, seed=9)
    other = generate(f"sqlite:///{tmp_path / 'c.db'}", invoices=40, seed=10)

    assert first == second
    assert _dump(f"sqlite:///{tmp_path / 'a.db'}") == _dump(f"sqlite:///{tmp_path / 'b.db'}")
    assert _dump(f"sqlite:///{tmp_path / 'a.db'}") != _dump(f"sqlite:///{tmp_path / 'c.db'}")
    assert other.dirty_ids != first.dirty_ids


def test_generating_again_replaces_the_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    generate(url, invoices=20)
    report = generate(url, invoices=5)
    assert len(_dump(url)["erp_invoice"]) == report.invoices == 5


def test_a_sqlite_erp_in_a_folder_not_made_yet_is_created(tmp_path: Path) -> None:
    """docs/prefect-server.md generates ``sqlite:///.state/deploy/erp.db`` on a fresh clone."""
    url = f"sqlite:///{tmp_path / 'not' / 'yet' / 'erp.db'}"
    assert generate(url, invoices=3).invoices == 3
    assert len(_dump(url)["erp_invoice"]) == 3


def test_counts_and_shape(generated: tuple[GenerationReport, Tables]) -> None:
    report, tables = generated
    lines_per_invoice = {
        key: sum(1 for line in tables["erp_invoice_line"] if line["invoice_key"] == key)
        for key in (row["invoice_key"] for row in tables["erp_invoice"])
    }
    assert report.invoices == len(tables["erp_invoice"]) == 150
    assert report.lines == len(tables["erp_invoice_line"])
    assert report.suppliers == len(tables["erp_supplier"])
    assert set(lines_per_invoice.values()) == {1, 2, 3, 4, 5}
    assert {row["status"] for row in tables["erp_invoice"]} == set(STATUSES)
    assert report.last_updated_at == max(row["updated_at"] for row in tables["erp_invoice"])


def test_amounts_are_exact(generated: tuple[GenerationReport, Tables]) -> None:
    _, tables = generated
    for line in tables["erp_invoice_line"]:
        quantity, price = Decimal(line["quantity"]), Decimal(line["unit_price"])
        amount, rate = line["line_amount"], Decimal(line["vat_rate"])
        assert amount == quantity * price
        vat = (quantity * price * rate / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert line["vat_amount"] == vat
    for header in tables["erp_invoice"]:
        lines = [r for r in tables["erp_invoice_line"] if r["invoice_key"] == header["invoice_key"]]
        assert header["net_amount"] == sum(r["line_amount"] for r in lines)
        assert header["vat_amount"] == sum(r["vat_amount"] for r in lines)
        assert header["total_amount"] == header["net_amount"] + header["vat_amount"]
        assert Decimal(header["total_amount"]).as_tuple().exponent == -2


def test_the_dirty_report_names_exactly_the_dirty_invoices(
    generated: tuple[GenerationReport, Tables],
) -> None:
    report, tables = generated
    found: dict[str, str] = {}
    for header in tables["erp_invoice"]:
        document_no = str(header["document_no"])
        if header["supplier_id"] is None:
            found[document_no] = "missing_supplier"
        elif _legacy_date(header["invoice_date_text"]) is None:
            found[document_no] = "bad_date"
        elif header["currency"] not in CURRENCIES:
            found[document_no] = "unknown_currency"

    assert found == report.dirty_ids
    assert len(report.dirty) == round(150 * 0.04) == 6
    assert set(report.dirty_ids.values()) == {"missing_supplier", "bad_date", "unknown_currency"}
    for item in report.dirty:
        assert item.value is None or item.value in {*BAD_DATES, UNKNOWN_CURRENCY}


def test_clean_invoices_have_what_the_mapping_needs(
    generated: tuple[GenerationReport, Tables],
) -> None:
    report, tables = generated
    clean = [h for h in tables["erp_invoice"] if h["document_no"] not in report.dirty_ids]
    for header in clean:
        issued = _legacy_date(header["invoice_date_text"])
        assert issued is not None
        assert issued <= header["posting_date"]
        assert header["currency"] in CURRENCIES
    texts = {
        str(h["document_no"]): f"{h['description']}{h['company_name']}"
        + "".join(
            str(r["description"])
            for r in tables["erp_invoice_line"]
            if r["invoice_key"] == h["invoice_key"]
        )
        for h in clean
    }
    assert report.non_ascii == {key for key, text in texts.items() if not text.isascii()}
    assert {"Müller GmbH", "株式会社山田商事"} <= {s["name"] for s in tables["erp_supplier"]}


def test_erp_errors_are_reported(generated: tuple[GenerationReport, Tables]) -> None:
    report, tables = generated
    with_error = {str(h["document_no"]) for h in tables["erp_invoice"] if h["erp_error_message"]}
    assert with_error == report.erp_errors
    assert len(with_error) == round(150 * 0.03)
    assert not with_error & set(report.dirty_ids)
    for header in tables["erp_invoice"]:
        if header["erp_error_message"]:
            assert header["erp_error_status"]
            assert header["erp_error_exception"]


def test_touch_changes_status_or_amounts_and_bumps_updated_at(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    report = generate(url, invoices=30, seed=4)
    before = {str(h["document_no"]): h for h in _dump(url)["erp_invoice"]}

    touched = touch(url, count=8, seed=1)
    tables = _dump(url)
    after = {str(h["document_no"]): h for h in tables["erp_invoice"]}

    assert touched.updated_at > report.last_updated_at
    assert len(touched.document_nos) == 8
    assert {item.change for item in touched.touched} == {"status", "amount"}
    for document_no, header in after.items():
        if document_no not in touched.document_nos:
            assert header == before[document_no]
            continue
        assert header["updated_at"] == touched.updated_at
    for item in touched.touched:
        column = "status" if item.change == "status" else "total_amount"
        assert str(before[item.document_no][column]) == item.before
        assert str(after[item.document_no][column]) == item.after
        assert item.before != item.after
        header = after[item.document_no]
        lines = [r for r in tables["erp_invoice_line"] if r["invoice_key"] == header["invoice_key"]]
        assert header["net_amount"] == sum(r["line_amount"] for r in lines)


def test_touch_at_a_given_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    generate(url, invoices=5)
    stamp = datetime(2030, 1, 2, 3, 4, 5)
    assert touch(url, count=2, at=stamp).updated_at == stamp
    assert sum(1 for h in _dump(url)["erp_invoice"] if h["updated_at"] == stamp) == 2


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_stores_the_same_data(dialect: str, make_database: MakeDatabase) -> None:
    url = make_database(dialect)
    report = generate(url, invoices=12, seed=21)
    reference = make_database("sqlite")
    assert generate(reference, invoices=12, seed=21) == report
    assert _dump(url) == _dump(reference)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"invoices": -1}, "invoices must be >= 0"),
        ({"lines_per_invoice": (0, 2)}, "lines_per_invoice"),
        ({"lines_per_invoice": (3, 2)}, "lines_per_invoice"),
        ({"dirty_share": 0.8, "erp_error_share": 0.5}, "sum <= 1"),
        ({"dirty_share": -0.1}, "must be >= 0"),
        ({"days": 0}, "days >= 1"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        generate("sqlite://", **arguments)  # type: ignore[arg-type]


def _normalized_ddl(text: str) -> str:
    text = re.sub(r"--[^\n]*", "", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*([(),;])\s*", r"\1", text)
    return text.replace("KEY(", "KEY (").replace("KEY (", "KEY(")


def test_the_reference_ddl_matches_the_tables() -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements = []
    for table in metadata.sorted_tables:
        statements.append(f"{CreateTable(table).compile(dialect=dialect)};")
        statements += [f"{CreateIndex(index).compile(dialect=dialect)};" for index in table.indexes]
    reference = (REPO / "sql/sample_erp/schema.sql").read_text(encoding="utf-8")
    assert _normalized_ddl(reference) == _normalized_ddl("\n".join(statements))


def test_the_extract_query_reads_every_table_column() -> None:
    query = (REPO / "sql/sample_erp/extract.sql").read_text(encoding="utf-8")
    body = query[query.index("SELECT") :]
    prefixes = {
        "erp_invoice": "h",
        "erp_invoice_line": "l",
        "erp_supplier": "s",
        "erp_payment": "p",
    }
    skipped = {"h.created_at", "l.invoice_key", "s.bank_account_last4"}
    # A payment only makes the invoice PAID (its status column): its details are no AppZen field.
    skipped |= {"p.payment_id", "p.amount", "p.paid_on", "p.recorded_at"}
    for table in metadata.sorted_tables:
        for column in table.columns:
            name = f"{prefixes[table.name]}.{column.name}"
            assert name in body or name in skipped, name
