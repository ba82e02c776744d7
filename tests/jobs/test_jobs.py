"""The job API the CLI and the flows share: a per-batch hook, reports attached by every job,
retry scopes, status-sync by mapping file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipeline.devkit.sample_erp import GenerationReport
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import retry as retry_job
from pipeline.jobs import status as status_job
from pipeline.jobs import sync as sync_job
from pipeline.load.sync import Result, SyncJob, SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "sample_erp.yaml"


def test_per_batch_runs_every_batch_and_reports_are_attached(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    erp: tuple[str, GenerationReport],
) -> None:
    batches: list[int] = []

    async def wrapped(job: SyncJob, batch: list[Result]) -> None:
        batches.append(len(batch))
        await job.process(batch)

    summary = asyncio.run(sync_job.run(settings, store, SyncOptions(MAPPING), per_batch=wrapped))

    assert sum(batches) == summary.counts["extracted"] == erp[1].invoices
    assert max(batches) == settings.batch_size
    for kind in ("csv", "html"):
        path = Path(summary.reports[kind])
        assert path.is_absolute(), summary.reports
        assert path.is_file(), summary.reports
        assert path.parent == settings.reports_dir.resolve()


def test_a_dry_run_has_no_reports(settings: Settings, store: StagingStore) -> None:
    plan = asyncio.run(sync_job.run(settings, store, SyncOptions(MAPPING, dry_run=True)))
    assert (plan.run_id, plan.reports) == (None, {})


def test_retry_scope_names_the_failed_invoices_of_a_run_or_all(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    first = asyncio.run(sync_job.run(settings, store, SyncOptions(MAPPING)))
    failed = frozenset(store.failed_invoice_ids("sample_erp", first.run_id))
    assert failed  # the sample ERP has rows that fail mapping

    of_run = retry_job.scope(store, MAPPING, first.run_id)
    assert (of_run.name, of_run.run_id, of_run.keys) == ("sample_erp", first.run_id, failed)
    assert retry_job.scope(store, MAPPING).keys == failed  # every open failure of the ledger
    options = of_run.options()
    assert (options.flow, options.retry_failed, options.incremental) == (
        "retry_failed",
        True,
        False,
    )
    assert options.only_keys == failed
    assert retry_job.scope(store, MAPPING, (first.run_id or 0) + 100).keys == frozenset()


def test_status_sync_takes_the_mapping_file_and_attaches_its_reports(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    asyncio.run(sync_job.run(settings, store, SyncOptions(MAPPING)))

    summary = asyncio.run(status_job.run(settings, store, status_job.StatusOptions(MAPPING)))

    assert (summary.flow, summary.mapping, summary.status) == (
        "status_sync",
        "sample_erp",
        "succeeded",
    )
    assert summary.counts["pushed"] > 0
    assert Path(summary.reports["html"]).is_file()
