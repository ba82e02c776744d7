"""``mapping init`` on sources no template knows: the sample ERP, the flat CSV export, a JSON
export, an ERP with upper-case names, and an export missing required fields (marked)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import generate
from pipeline.mapping import MappedInvoice, MappingFileError, load_mapping
from pipeline.scaffold import InitError, from_database, from_files, pending, write
from tests.databases import pg_schema
from tests.scaffold.test_init_templates import fill
from tests.templates.fixtures import oracle_ebs, sap_s4
from tests.templates.support import PROJECT, cli, map_file

FLAT = PROJECT / "samples" / "flat_ap_export.csv"
MERCHANT = PROJECT / "samples" / "merchant_invoices.json"


def test_the_sample_erp_gets_a_draft_mapping_check_accepts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    report = generate(url, invoices=40, seed=11)
    draft = from_database(url, tmp_path / "mappings")
    assert draft.template is None
    assert draft.marks == []  # every required field found
    assert draft.notes == [
        "header table erp_invoice", "line table erp_invoice_line", "supplier table erp_supplier",
    ]  # fmt: skip
    write(draft)
    assert draft.query is not None
    assert "ORDER BY h.invoice_key, l.line_number" in draft.query
    assert "WHERE (:since IS NULL OR h.updated_at > :since)" in draft.query
    spec = load_mapping(draft.target.mapping)
    assert spec.watermark_column == "updated_at"
    result = cli("mapping", "check", str(draft.target.mapping), cwd=tmp_path,
                 env={"ERP_DATABASE_URL": url})  # fmt: skip
    clean = report.invoices - len(report.dirty_ids)
    assert f"valid; {clean} of {report.invoices} invoices mapped" in result.stdout
    results = map_file(draft.target.mapping, url)
    mapped = [r for r in results if isinstance(r, MappedInvoice)]
    assert all(r.invoice.invoice_lines for r in mapped)
    assert {r.erp_status for r in mapped} <= {"PARKED", "APPROVED", "POSTED", "PAID"}


def test_the_flat_csv_export_gets_a_draft_mapping_check_accepts(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "exports").mkdir(parents=True)
    export = project / "exports" / "ap.csv"
    export.write_bytes(FLAT.read_bytes())
    draft = from_files([export], project / "mappings")
    assert draft.marks == []
    text = draft.mapping
    assert "  path: exports/ap.csv" in text  # relative to the project directory
    assert '  delimiter: ";"' in text
    assert 'decimal_separator: ","' in text
    assert 'thousands_separator: "."' in text
    assert 'date_formats: ["%d.%m.%Y"]' in text
    write(draft)
    result = cli("mapping", "check", "mappings/ap.yaml", cwd=project)
    assert "valid; 18 of 20 invoices mapped" in result.stdout  # the two dirty invoices
    shipped = {r.key: r.invoice for r in map_file(PROJECT / "mappings" / "flat_csv.yaml")
               if isinstance(r, MappedInvoice)}  # fmt: skip
    for result_ in map_file(draft.target.mapping):
        if isinstance(result_, MappedInvoice):
            ours, theirs = result_.invoice, shipped[result_.key]
            assert ours.total_amount == theirs.total_amount
            assert ours.invoice_date == theirs.invoice_date
            lines = [(x.quantity, x.unit_price, x.total_amount) for x in ours.invoice_lines]
            assert lines == [
                (x.quantity, x.unit_price, x.total_amount) for x in theirs.invoice_lines
            ]


def test_an_export_missing_fields_gets_marks_check_names(tmp_path: Path) -> None:
    export = tmp_path / "bills.csv"
    with export.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["Bill No", "Bill Date", "Vendor Code", "Description", "Qty", "Price", "Line Total"]
        )
        writer.writerow(["B-1", "2024-03-01", "V1", "Paper", "2", "5.00", "10.00"])
        writer.writerow(["B-2", "2024-03-02", "V2", "Toner", "1", "80.00", "80.00"])
    draft = from_files([export], tmp_path / "mappings")
    write(draft)
    missing = {mark.split(":")[0] for mark in draft.marks}
    assert missing == {"entity_id", "total_amount.amount", "total_amount.currency"}
    messages = pending(draft)
    assert len(messages) == 5  # entity, total amount, and the currency of three amounts
    assert all(re.match(rf"{re.escape(str(draft.target.mapping))}:\d+ ", m) for m in messages)
    assert any("header.entity_id: not filled in: TODO(mapping init): the company" in m
               for m in messages)  # fmt: skip
    check = cli("mapping", "check", str(draft.target.mapping), cwd=tmp_path)
    assert check.code == 2
    assert "header.total_amount.currency: not filled in" in check.stderr
    filled = fill(draft.mapping, {
        "entity_id": "{ const: US01 }",
        "amount": "{ sum_lines: total_amount.amount }",
        "currency": "{ const: USD }",
    })  # fmt: skip
    draft.target.mapping.write_text(filled, encoding="utf-8")
    results = map_file(draft.target.mapping)
    assert [r.key for r in results if isinstance(r, MappedInvoice)] == ["B-1", "B-2"]


def test_a_json_export_with_nested_lines_is_exploded(tmp_path: Path) -> None:
    draft = from_files([MERCHANT], tmp_path / "mappings")
    text = draft.mapping
    assert "  records: invoices\n  explode: invoiceItems\n" in text
    assert "invoice_key: id " in text
    assert "  quantity: invoiceItems.quantity\n" in text
    assert "  line_description: invoiceItems.name\n" in text
    write(draft)
    with pytest.raises(MappingFileError) as caught:
        load_mapping(draft.target.mapping)
    assert all("not filled in: TODO(mapping init)" in message for message in caught.value.errors)


def test_upper_case_erp_names_are_matched_without_the_template(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ebs.db'}"
    invoices = oracle_ebs.build(url)
    draft = from_database(url, tmp_path / "mappings", use_templates=False)
    assert draft.template is None
    assert draft.marks == []
    assert "invoice_key: INVOICE_ID" in draft.mapping
    assert "  invoice_number: INVOICE_NUM\n" in draft.mapping
    assert "    amount: INVOICE_AMOUNT\n    currency: INVOICE_CURRENCY_CODE\n" in draft.mapping
    write(draft)
    results = map_file(draft.target.mapping, url)
    assert len(results) == len(invoices) + 1  # the prepayment too: no template, no filter


def test_a_composite_key_is_marked_with_how_to_make_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sap.db'}"
    sap_s4.build(url)
    draft = from_database(url, tmp_path / "mappings", use_templates=False)
    assert draft.notes == ["header table RBKP", "line table RSEG", "supplier table LFA1"]
    assert any(
        mark.startswith("invoice_key: the invoice key: RBKP's key has several")
        for mark in draft.marks
    )
    assert draft.query is not None
    assert 'ORDER BY h."MANDT", h."BELNR", h."GJAHR", l."BUZEI"' in draft.query


def test_sources_that_cannot_be_read_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InitError, match=r"--from-file .*nope\.csv: no such file"):
        from_files([tmp_path / "nope.csv"], tmp_path / "mappings")
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    generate(url, invoices=5, seed=1)
    with pytest.raises(InitError, match="--tables: no table 'invoices'"):
        from_database(url, tmp_path / "mappings", tables=["invoices"])
    secret = "postgresql+psycopg://app:s3cret@127.0.0.1:1/erp"
    result = cli("mapping", "init", "--from-db", secret, cwd=tmp_path)
    assert result.code == 2
    assert "s3cret" not in result.stderr + result.stdout
    assert "app:***@127.0.0.1" in result.stderr


@pytest.mark.postgres
def test_the_sample_erp_on_postgresql_gets_the_same_draft(tmp_path: Path) -> None:
    with pg_schema("init") as url:
        report = generate(url, invoices=20, seed=4)
        draft = from_database(url, tmp_path / "mappings")
        assert draft.marks == []
        write(draft)
        results = map_file(draft.target.mapping, url)
        mapped = [r for r in results if isinstance(r, MappedInvoice)]
        assert len(mapped) == report.invoices - len(report.dirty_ids)
