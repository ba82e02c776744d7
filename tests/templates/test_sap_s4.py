"""The SAP S/4HANA / ECC logistics invoice verification template against its fixture database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.mapping import MappedInvoice, load_mapping, map_source
from tests.databases import pg_schema
from tests.templates.fixtures import sap_s4
from tests.templates.fixtures.common import Invoice
from tests.templates.support import TEMPLATES, check_book, cli, map_file, post_all

MAPPING = TEMPLATES / "sap_s4" / "sap_s4.yaml"


@pytest.fixture(scope="module")
def erp(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Invoice]]:
    """The fixture database: ``(url, book)``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('sap') / 'sap.db'}"
    return url, sap_s4.build(url)


def test_mapping_check_accepts_the_template(erp: tuple[str, list[Invoice]], tmp_path: Path) -> None:
    url, invoices = erp
    result = cli("mapping", "check", str(MAPPING), cwd=tmp_path, env={"ERP_DATABASE_URL": url})
    valid = sum(invoice.dirty is None for invoice in invoices)
    assert f"valid; {valid} of {len(invoices)} invoices mapped" in result.stdout
    assert result.code == 1  # the dirty invoices are listed as failures, nothing else is wrong


def test_the_book_is_mapped_and_the_dirty_invoices_reported(
    erp: tuple[str, list[Invoice]],
) -> None:
    url, invoices = erp
    results = map_file(MAPPING, url)
    check_book(results, invoices, sap_s4.key)
    assert "5105699999-2024" not in {r.key for r in results}  # deleted (RBSTAT 2)


def test_sap_conventions_become_appzen_ones(erp: tuple[str, list[Invoice]]) -> None:
    url, invoices = erp
    results = {r.key: r for r in map_file(MAPPING, url)}
    first = results[sap_s4.key(invoices[0])]
    assert isinstance(first, MappedInvoice)
    sent = first.invoice
    assert sent.supplier_id == str(invoices[0].supplier.number)  # 0000100002 without the zeros
    assert (sent.entity_id, sent.entity_name) == ("1010", "Musterfirma AG")
    line = sent.invoice_lines[0]
    assert line.line_number == 1  # BUZEI 000001
    assert line.line_item_code is not None
    assert not line.line_item_code.startswith("0")
    assert line.line_description == invoices[0].lines[0].description  # from EKPO-TXZ01
    assert sent.supplier_address is not None
    assert sent.supplier_address.city == invoices[0].supplier.city  # the international version
    credit = results[sap_s4.key(invoices[1])]
    assert isinstance(credit, MappedInvoice)
    assert credit.invoice.invoice_type == "CREDIT_NOTE"
    assert all(line.total_amount.amount > 0 for line in credit.invoice.invoice_lines)
    yen = results[sap_s4.key(invoices[2])]
    assert isinstance(yen, MappedInvoice)
    assert yen.invoice.total_amount.amount == invoices[2].total  # 10.00 stored → 1000 JPY
    assert yen.invoice.invoice_lines[0].unit_price.amount == invoices[2].lines[0].unit_price
    statuses = {r.erp_status for r in results.values() if isinstance(r, MappedInvoice)}
    assert statuses == {"PARKED", "POSTED", "BLOCKED FOR PAYMENT"}


def test_the_sandbox_accepts_every_mapped_invoice(
    erp: tuple[str, list[Invoice]], sandbox: SandboxServer
) -> None:
    url, _ = erp
    statuses = post_all(sandbox, map_file(MAPPING, url))
    assert statuses
    assert set(statuses.values()) == {201}


def test_incremental_runs_read_documents_entered_since(erp: tuple[str, list[Invoice]]) -> None:
    url, invoices = erp
    since = f"{invoices[-3].changed_at:%Y%m%d%H%M%S}"
    changed = list(map_source(load_mapping(MAPPING), {"since": since}, erp_url=url))
    assert [r.key for r in changed] == [sap_s4.key(i) for i in invoices[-2:]]


@pytest.mark.postgres
def test_the_template_reads_a_postgresql_replica(tmp_path: Path) -> None:
    """A replica that folded SAP's names to lower case (rbkp.belnr) and keeps exact decimals."""
    with pg_schema("sap") as url:
        invoices = sap_s4.build(url)
        results = map_file(MAPPING, url)
        check_book(results, invoices, sap_s4.key)
        yen = next(r for r in results if r.key == sap_s4.key(invoices[2]))
        assert isinstance(yen, MappedInvoice)
        assert yen.invoice.total_amount.amount == invoices[2].total
        result = cli("mapping", "check", str(MAPPING), cwd=tmp_path, env={"ERP_DATABASE_URL": url})
        assert "valid; 12 of 16 invoices mapped" in result.stdout
