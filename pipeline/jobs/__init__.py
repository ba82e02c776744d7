"""Composition root: settings, staging, jobs and reports wired together for the CLI and flows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from dataclasses import replace
from pathlib import Path

from pipeline.appzen.client import AppZenClient
from pipeline.errors import RunStopped
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.mapping.engine import MappedInvoice, MappingEngine, RejectedInvoice
from pipeline.mapping.loader import load_mapping
from pipeline.mapping.spec import MappingSpec
from pipeline.redact import register_settings
from pipeline.report import ReportPaths, write_reports
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary


def open_store(settings: Settings) -> StagingStore:
    """The staging store of ``settings`` (migrated to the latest version)."""
    register_settings(settings)
    return StagingStore.open(settings.staging_database_url.get_secret_value())


def run_sync(
    options: SyncOptions,
    settings: Settings,
    store: StagingStore,
    *,
    client: AppZenClient | None = None,
    on_progress: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Run one sync/backfill/retry job to the end; the summary (fatal stops are in it)."""
    register_settings(settings)
    job = SyncJob(options, settings, store=store, client=client)
    job.on_progress = on_progress
    return asyncio.run(job.run())


def run_retry_failed(
    options: SyncOptions,
    settings: Settings,
    store: StagingStore,
    *,
    run_id: int | None = None,
    on_progress: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Re-map from the source and resend only the invoices that failed (of one run, or all)."""
    spec = load_mapping(options.mapping)
    keys = frozenset(store.failed_invoice_ids(spec.name, run_id))
    retry = replace(
        options, flow="retry_failed", retry_failed=True, incremental=False, only_keys=keys
    )
    return run_sync(retry, settings, store, on_progress=on_progress)


def run_status(
    mapping: Path, settings: Settings, store: StagingStore, *, dry_run: bool = False
) -> RunSummary:
    """Push every pending ERP status change of the mapping to AppZen."""
    register_settings(settings)
    name = load_mapping(mapping).name
    return asyncio.run(run_status_sync(settings, store, name, dry_run=dry_run))


def reports_for(store: StagingStore, summary: RunSummary, out_dir: Path) -> ReportPaths | None:
    """Write the failed-row report (CSV + HTML) of a recorded run."""
    if summary.run_id is None:
        return None
    run = store.get_run(summary.run_id)
    if run is None:
        return None
    return write_reports(run, store.failures_for_run(summary.run_id), out_dir)


def raise_if_stopped(summary: RunSummary) -> None:
    """Turn a run stopped by a fatal AppZen answer into :class:`RunStopped` (exit code 2)."""
    if summary.fatal:
        raise RunStopped(f"run {summary.run_id} stopped: {summary.fatal}")


def mapped_results(
    spec: MappingSpec, settings: Settings, *, since: str | None = None
) -> Generator[MappedInvoice | RejectedInvoice, None, None]:
    """Map the mapping's source without staging or sending (preview, mapping check); close the
    generator when stopping early, so the source's connection closes at once."""
    erp = settings.erp_database_url
    url = erp.get_secret_value() if erp is not None else None
    source = spec.open_source(None, url, settings=settings)
    lines = spec.open_lines_source(None, url, settings=settings)
    engine = MappingEngine(spec)
    engine.check_columns(
        source.columns(), lines.columns() if lines else None, source=source.describe()
    )
    params = {"since": since, "until": None}
    chunks = source.chunks(params)
    line_chunks = lines.chunks(params) if lines else None
    try:
        yield from engine.run(chunks, line_chunks)
    finally:  # stopped early: end the sources' queries now, not at interpreter exit
        for stream in (chunks, line_chunks):
            close = getattr(stream, "close", None)
            if close is not None:
                close()
