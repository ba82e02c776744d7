"""The failed-row reports of a finished run, written and attached to its summary (every job)."""

from __future__ import annotations

from pathlib import Path

from pipeline.report import ReportPaths, write_reports
from pipeline.settings import Settings
from pipeline.staging import RunRecord, StagingStore
from pipeline.staging.ledger import ALL_STATES, LedgerEntry
from pipeline.summary import RunSummary

CONTENT_FLOWS = frozenset({"sync", "backfill", "retry_failed"})
"""The runs that send invoices: their reports carry the mapping's open failures."""


def write_run_reports(store: StagingStore, run: RunRecord, out_dir: Path) -> ReportPaths:
    """Write the reports of ``run``: its failures, each invoice named from the ledger, and (for
    the mapping's latest sending run) every failure still open from earlier runs."""
    failures = store.failures_for_run(run.id)
    keys = {f.failure.source_key for f in failures if f.failure.source_key}
    ledger = store.ledger
    named = {e.invoice_id: e for e in ledger.entries(run.mapping, ALL_STATES, keys)}
    carried: list[LedgerEntry] = []
    if run.flow in CONTENT_FLOWS and _latest_sending_run(store, run):
        carried = [e for e in ledger.entries(run.mapping) if e.invoice_id not in keys]
    return write_reports(run, failures, out_dir, ledger=named, carried=carried)


def _latest_sending_run(store: StagingStore, run: RunRecord) -> bool:
    for record in store.list_runs(200):
        if record.mapping == run.mapping and record.flow in CONTENT_FLOWS:
            return record.id == run.id
    return True


def attach_reports(store: StagingStore, settings: Settings, summary: RunSummary) -> RunSummary:
    """Write the CSV and HTML failed-row reports of a recorded run into ``settings.reports_dir``
    and put their absolute paths in ``summary.reports``; a dry run (no run record) has none.
    Returns ``summary``."""
    if summary.run_id is None:
        return summary
    run = store.get_run(summary.run_id)
    if run is None:
        return summary
    paths = write_run_reports(store, run, settings.reports_dir)
    summary.reports = {"csv": str(paths.csv.resolve()), "html": str(paths.html.resolve())}
    return summary
