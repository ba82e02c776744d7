"""The NetSuite templates: a saved-search CSV export and SuiteQL rows as JSON Lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.mapping import MappedInvoice
from tests.templates.fixtures import netsuite
from tests.templates.fixtures.common import Invoice
from tests.templates.support import check_book, cli, copy_template, map_file, post_all


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Invoice], list[Invoice]]:
    """A copy of the templates with both fixture exports: ``(folder, bills, book)``."""
    folder = copy_template("netsuite", tmp_path_factory.mktemp("netsuite"))
    bills = netsuite.write_saved_search(folder / "export")
    return folder, bills, netsuite.write_suiteql(folder / "export")


@pytest.mark.parametrize("name", ["netsuite_saved_search", "netsuite_suiteql"])
def test_mapping_check_accepts_the_templates(
    exports: tuple[Path, list[Invoice], list[Invoice]], tmp_path: Path, name: str
) -> None:
    folder, bills, invoices = exports
    result = cli("mapping", "check", str(folder / f"{name}.yaml"), cwd=tmp_path)
    written = bills if name == "netsuite_saved_search" else invoices
    valid = sum(invoice.dirty is None for invoice in written)
    assert f"valid; {valid} of {len(written)} invoices mapped" in result.stdout
    assert result.code == 1  # the dirty invoices are listed as failures


def test_the_saved_search_is_mapped_and_the_dirty_bills_reported(
    exports: tuple[Path, list[Invoice], list[Invoice]],
) -> None:
    folder, bills, _ = exports
    results = map_file(folder / "netsuite_saved_search.yaml")
    check_book(results, bills, netsuite.key, total=netsuite.TOTAL)
    first = results[0]
    assert isinstance(first, MappedInvoice)
    assert first.invoice.total_amount.currency in {"USD", "EUR"}  # from "US Dollar", "Euro"
    assert first.erp_status in set(netsuite.STATUS.values())


def test_the_suiteql_rows_are_mapped_with_the_vendor_credit(
    exports: tuple[Path, list[Invoice], list[Invoice]],
) -> None:
    folder, _, invoices = exports
    results = map_file(folder / "netsuite_suiteql.yaml")
    check_book(results, invoices, netsuite.key, total=netsuite.TOTAL)
    saved = {
        r.key: r.invoice
        for r in map_file(folder / "netsuite_saved_search.yaml")
        if isinstance(r, MappedInvoice)
    }
    both = [r for r in results if isinstance(r, MappedInvoice) and r.key in saved]
    assert len(both) == len(saved)  # every bill of the saved search, the same way
    for result in both:
        assert result.invoice.total_amount == saved[result.key].total_amount
        assert result.invoice.supplier_id == saved[result.key].supplier_id


@pytest.mark.parametrize("name", ["netsuite_saved_search", "netsuite_suiteql"])
def test_the_sandbox_accepts_every_mapped_invoice(
    exports: tuple[Path, list[Invoice], list[Invoice]], sandbox: SandboxServer, name: str
) -> None:
    statuses = post_all(sandbox, map_file(exports[0] / f"{name}.yaml"))
    assert statuses
    assert set(statuses.values()) == {201}
