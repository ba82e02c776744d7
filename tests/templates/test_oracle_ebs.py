"""The Oracle E-Business Suite Payables template against its fixture database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.mapping import MappedInvoice
from tests.templates.fixtures import oracle_ebs
from tests.templates.fixtures.common import Invoice
from tests.templates.support import TEMPLATES, check_book, cli, map_file, post_all

MAPPING = TEMPLATES / "oracle_ebs" / "oracle_ebs.yaml"


@pytest.fixture(scope="module")
def erp(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Invoice]]:
    """The fixture database: ``(url, book)``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('ebs') / 'ebs.db'}"
    return url, oracle_ebs.build(url)


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
    check_book(results, invoices, oracle_ebs.key)
    first = next(r for r in results if isinstance(r, MappedInvoice))
    assert first.erp_status is not None
    assert first.watermark is not None
    sent = first.invoice
    assert (sent.entity_id, sent.entity_name) == ("204", "Vision Operations")
    assert sent.supplier_number is not None
    assert sent.supplier_number.startswith("V1000")


def test_oracle_conventions_become_appzen_ones(erp: tuple[str, list[Invoice]]) -> None:
    url, invoices = erp
    results = {r.key: r for r in map_file(MAPPING, url)}
    credit = results[oracle_ebs.key(invoices[1])]
    assert isinstance(credit, MappedInvoice)
    assert credit.invoice.invoice_type == "CREDIT_NOTE"
    assert credit.invoice.total_amount.amount > 0  # stored negative in Payables
    freight = results[oracle_ebs.key(invoices[3])]
    assert isinstance(freight, MappedInvoice)
    line = freight.invoice.invoice_lines[0]  # amount-only: quantity 1 at the line amount
    assert line.line_description == "Freight"
    assert line.quantity == 1
    assert line.unit_price.amount == line.total_amount.amount
    statuses = {r.erp_status for r in results.values() if isinstance(r, MappedInvoice)}
    assert statuses == {"PENDING APPROVAL", "APPROVED", "PAID", "PARTIALLY PAID"}
    assert "19999" not in results  # the prepayment is not extracted


def test_the_sandbox_accepts_every_mapped_invoice(
    erp: tuple[str, list[Invoice]], sandbox: SandboxServer
) -> None:
    url, _ = erp
    statuses = post_all(sandbox, map_file(MAPPING, url))
    assert statuses
    assert set(statuses.values()) == {201}


def test_incremental_runs_read_only_changed_invoices(erp: tuple[str, list[Invoice]]) -> None:
    url, invoices = erp
    from pipeline.mapping import load_mapping, map_source  # noqa: PLC0415

    spec = load_mapping(MAPPING)
    since = invoices[-3].changed_at.strftime("%Y-%m-%d %H:%M:%S")
    changed = list(map_source(spec, {"since": since}, erp_url=url))
    assert [r.key for r in changed] == [oracle_ebs.key(i) for i in invoices[-2:]]
