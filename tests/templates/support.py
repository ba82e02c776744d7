"""Proving an ERP template: run ``mapping check`` on it, map its fixture, compare with the book,
and post the mapped invoices to the sandbox."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devkit.sandbox import SandboxServer
from pipeline.mapping import MappedInvoice, RejectedInvoice, Result, load_mapping, map_source
from tests.sandbox.helpers import AUTH
from tests.templates.fixtures.common import RULES, Invoice

PROJECT = Path(__file__).resolve().parents[2]
TEMPLATES = PROJECT / "mappings" / "templates"
SETTING_PREFIXES = ("APPZEN_", "ERP_", "STAGING_", "REPORTS_", "BATCH_", "MERCHANT_", "CRM_")


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one ``appzen-etl`` command run in process."""

    code: int
    stdout: str
    stderr: str


def cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> CliResult:
    """``appzen-etl *args`` in this process from ``cwd``, with no inherited pipeline setting."""
    inherited: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(SETTING_PREFIXES)
    }
    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            app, list(args), env={**inherited, "COLUMNS": "200", **(env or {})}
        )
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def copy_template(name: str, root: Path) -> Path:
    """A copy of ``mappings/templates/<name>`` as ``root/<name>`` (its paths stay valid)."""
    target = root / name
    shutil.copytree(TEMPLATES / name, target)
    return target


def map_file(mapping: Path, erp_url: str | None = None) -> list[Result]:
    """Every result of a mapping file on its own source (paths relative to its folder's parent)."""
    return list(map_source(load_mapping(mapping), {}, erp_url=erp_url))


def check_book(
    results: Sequence[Result],
    invoices: Sequence[Invoice],
    key: Callable[[Invoice], str],
    *,
    total: str = "gross",
) -> None:
    """The valid invoices mapped as the book says, each dirty one rejected for its reason."""
    by_key = {str(result.key): result for result in results}
    assert sorted(by_key) == sorted(key(invoice) for invoice in invoices)
    for invoice in invoices:
        result = by_key[key(invoice)]
        if invoice.dirty is None:
            assert isinstance(result, MappedInvoice), _failures(result)
            _check_invoice(result, invoice, total)
        else:
            assert isinstance(result, RejectedInvoice), f"{invoice.dirty} was not rejected"
            found = {(failure.rule, failure.field_path) for failure in result.failures}
            assert RULES[invoice.dirty] in found, (invoice.dirty, found)
            assert all(failure.message and failure.source_location for failure in result.failures)


def _failures(result: Result) -> str:
    if isinstance(result, RejectedInvoice):
        return "; ".join(f"{f.field_path}: {f.message}" for f in result.failures)
    return ""


def _check_invoice(result: MappedInvoice, invoice: Invoice, total: str) -> None:
    sent = result.invoice
    expected = invoice.total if total == "gross" else invoice.net
    assert sent.total_amount.amount == expected, (result.key, sent.total_amount, expected)
    assert sent.total_amount.currency == invoice.currency
    assert sent.invoice_type == ("CREDIT_NOTE" if invoice.credit else "INVOICE")
    assert [line.total_amount.amount for line in sent.invoice_lines] == [
        line.amount for line in invoice.lines
    ]
    assert all(line.quantity > 0 for line in sent.invoice_lines)
    assert sent.invoice_date.startswith(invoice.invoice_date.isoformat())
    if invoice.currency == "JPY":  # no minor units: whole yen, never cents
        assert sent.total_amount.amount == sent.total_amount.amount.to_integral_value()


def post_all(sandbox: SandboxServer, results: Sequence[Result]) -> dict[str, int]:
    """POST every mapped invoice's payload to the sandbox: ``{key: HTTP status}``."""
    statuses = {}
    with httpx.Client(base_url=sandbox.base_url, headers=AUTH, timeout=10.0) as client:
        for result in results:
            if isinstance(result, MappedInvoice):
                response = client.post(
                    "/invoice", content=result.payload, headers={"historical": "true"}
                )
                statuses[result.key] = response.status_code
    return statuses


def payloads(results: Sequence[Result]) -> dict[str, bytes]:
    """``{key: payload bytes}`` of the mapped invoices."""
    return {r.key: r.payload for r in results if isinstance(r, MappedInvoice)}
