"""The failed-row reports of a finished run, written and attached to its summary (every job), and
the run's failed invoices as an AP analyst reads them (for the artifacts and the run-end line)."""

from __future__ import annotations

from pathlib import Path

from pipeline.mapping.errors import MappingError
from pipeline.mapping.loader import load_mapping
from pipeline.report import ReportPaths, report_paths, write_reports
from pipeline.report.invoices import InvoiceEntry, amount_at_risk, invoice_entries
from pipeline.settings import Settings
from pipeline.staging import RunRecord, StagingStore
from pipeline.staging.ledger import ALL_STATES, LedgerEntry
from pipeline.staging.records import StoredFailure
from pipeline.summary import RunSummary

CONTENT_FLOWS = frozenset({"sync", "backfill", "retry_failed"})
"""The runs that send invoices: their reports carry the mapping's open failures."""


def write_run_reports(store: StagingStore, run: RunRecord, out_dir: Path) -> ReportPaths:
    """Write the reports of ``run``: its failures, each invoice named from the ledger, and (for
    the mapping's latest sending run) every failure still open from earlier runs."""
    failures, named = _named_failures(store, run)
    keys = {f.failure.source_key for f in failures if f.failure.source_key}
    carried: list[LedgerEntry] = []
    if run.flow in CONTENT_FLOWS and _latest_sending_run(store, run):
        carried = [e for e in store.ledger.entries(run.mapping) if e.invoice_id not in keys]
    return write_reports(
        run, failures, out_dir, ledger=named, carried=carried, document_url=_document_url(run)
    )


def _document_url(run: RunRecord) -> str | None:
    """The ``document_url:`` of the mapping a sending run used, as the file says now; ``None``
    when it has none or cannot be read any more (the report is then written without links)."""
    if run.flow not in CONTENT_FLOWS:
        return None
    named = run.parameters.get("mapping") or run.mapping
    try:
        return load_mapping(Path(str(named))).document_url
    except MappingError:
        return None


def report_url(prefix: str | None, run_id: int) -> str | None:
    """The HTML report of ``run_id`` under APPZEN_REPORTS_URL (``prefix``); None without one."""
    if not prefix:
        return None
    return f"{prefix.rstrip('/')}/{report_paths(run_id, Path()).html.name}"


def failed_invoices(store: StagingStore, run: RunRecord) -> list[InvoiceEntry]:
    """The invoices that failed in ``run`` (one entry each, named from the ledger: number,
    supplier, total and currency as far as they were read), in the order they failed."""
    failures, named = _named_failures(store, run)
    return invoice_entries(failures, named)


def _named_failures(
    store: StagingStore, run: RunRecord
) -> tuple[list[StoredFailure], dict[str, LedgerEntry]]:
    failures = list(store.failures_for_run(run.id))
    keys = {f.failure.source_key for f in failures if f.failure.source_key}
    named = {e.invoice_id: e for e in store.ledger.entries(run.mapping, ALL_STATES, keys)}
    return failures, named


def _latest_sending_run(store: StagingStore, run: RunRecord) -> bool:
    for record in store.list_runs(200):
        if record.mapping == run.mapping and record.flow in CONTENT_FLOWS:
            return record.id == run.id
    return True


def attach_reports(store: StagingStore, settings: Settings, summary: RunSummary) -> RunSummary:
    """Write the CSV and HTML failed-row reports of a recorded run into ``settings.reports_dir``
    and put their absolute paths in ``summary.reports`` (and, with APPZEN_REPORTS_URL, the HTML
    report's URL as ``url``), and the amount at risk of its failed
    invoices in ``summary.at_risk``; a dry run (no run record) has none. Returns ``summary``."""
    if summary.run_id is None:
        return summary
    run = store.get_run(summary.run_id)
    if run is None:
        return summary
    paths = write_run_reports(store, run, settings.reports_dir)
    summary.reports = {"csv": str(paths.csv.resolve()), "html": str(paths.html.resolve())}
    url = report_url(settings.appzen_reports_url, run.id)
    if url is not None:
        summary.reports["url"] = url
    if summary.failed:
        sums, unknown = amount_at_risk(failed_invoices(store, run))
        summary.at_risk = {currency: str(amount) for currency, amount in sums}
        summary.at_risk_unknown = unknown
    return summary
