"""The Dynamics 365 Finance templates: the data-entity CSV export and the BYOD database."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.mapping import MappedInvoice
from tests.templates.fixtures import dynamics365
from tests.templates.fixtures.common import Invoice
from tests.templates.support import TEMPLATES, check_book, cli, copy_template, map_file, post_all


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Invoice]]:
    """A copy of the template with the fixture export where it looks: ``(mapping, book)``."""
    folder = copy_template("dynamics365", tmp_path_factory.mktemp("d365"))
    return folder / "dynamics365.yaml", dynamics365.write_export(folder / "export")


@pytest.fixture(scope="module")
def byod(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Invoice]]:
    """The BYOD fixture database: ``(url, book)``."""
    url = f"sqlite:///{tmp_path_factory.mktemp('byod') / 'byod.db'}"
    return url, dynamics365.build_byod(url)


def test_mapping_check_accepts_the_csv_template(
    export: tuple[Path, list[Invoice]], tmp_path: Path
) -> None:
    mapping, invoices = export
    result = cli("mapping", "check", str(mapping), cwd=tmp_path)
    valid = sum(invoice.dirty is None for invoice in invoices)
    assert f"valid; {valid} of {len(invoices)} invoices mapped" in result.stdout
    assert result.code == 1  # the dirty invoices are listed as failures


def test_the_export_is_mapped_and_the_dirty_invoices_reported(
    export: tuple[Path, list[Invoice]],
) -> None:
    mapping, invoices = export
    results = map_file(mapping)
    check_book(results, invoices, dynamics365.key, total=dynamics365.TOTAL)
    first = results[0]
    assert isinstance(first, MappedInvoice)
    assert first.invoice.entity_id == "USMF"
    assert first.invoice.invoice_lines[0].line_number == 1  # 1.0000000000


def test_the_byod_template_maps_the_same_invoices(
    byod: tuple[str, list[Invoice]], export: tuple[Path, list[Invoice]], tmp_path: Path
) -> None:
    url, invoices = byod
    mapping = TEMPLATES / "dynamics365" / "dynamics365_byod.yaml"
    result = cli("mapping", "check", str(mapping), cwd=tmp_path, env={"ERP_DATABASE_URL": url})
    assert "valid; " in result.stdout
    results = map_file(mapping, url)
    check_book(results, invoices, dynamics365.key, total=dynamics365.TOTAL)
    from_csv = {r.key: r.invoice for r in map_file(export[0]) if isinstance(r, MappedInvoice)}
    for mapped in results:
        if isinstance(mapped, MappedInvoice):
            assert mapped.invoice.entity_id == "USMF"  # stored usmf
            assert mapped.invoice.invoice_status == from_csv[mapped.key].invoice_status
            assert mapped.invoice.total_amount == from_csv[mapped.key].total_amount


def test_the_sandbox_accepts_every_invoice_read_from_byod(
    byod: tuple[str, list[Invoice]], sandbox: SandboxServer
) -> None:
    url, _ = byod
    statuses = post_all(sandbox, map_file(TEMPLATES / "dynamics365" / "dynamics365_byod.yaml", url))
    assert statuses
    assert set(statuses.values()) == {201}


def test_the_sandbox_accepts_every_mapped_invoice(
    export: tuple[Path, list[Invoice]], sandbox: SandboxServer
) -> None:
    statuses = post_all(sandbox, map_file(export[0]))
    assert statuses
    assert set(statuses.values()) == {201}
