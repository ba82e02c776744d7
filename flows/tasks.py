"""The tasks flows are made of: one per batch of invoices (never one per invoice)."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.common import log_summary, only_transient, open_store
from pipeline.appzen.client import AppZenClient
from pipeline.jobs import reports_for
from pipeline.load.sync import Result, SyncJob, SyncOptions, drive
from pipeline.runtime.ratelimit import RateLimiter
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary


@task(
    name="post-batch",
    retries=2,
    retry_delay_seconds=[5, 30],
    retry_condition_fn=only_transient,
    cache_policy=NO_CACHE,
)
async def post_batch(job: Any, batch: Any) -> int:
    """Stage, claim, post and record one batch (a unit of work of BATCH_SIZE invoices)."""
    await job.process(batch)
    return len(batch)


async def run_job(
    options: SyncOptions,
    settings: Settings,
    store: StagingStore,
    *,
    client: AppZenClient | None = None,
    limiter: RateLimiter | None = None,
) -> RunSummary:
    """Run a sync/backfill/retry job with one ``post-batch`` task per batch; log its summary and
    write its failed-row report (paths in ``summary.reports``)."""
    job = SyncJob(options, settings, store=store, client=client, limiter=limiter)

    async def one(batch: list[Result]) -> None:
        await post_batch(quote(job), quote(batch))

    async with job:
        await drive(job, one)
    summary = job.summary
    log_summary(summary)
    reports = reports_for(store, summary, settings.reports_dir)
    if reports is not None:
        summary.reports = {"csv": str(reports.csv), "html": str(reports.html)}
    return summary


@task(name="status-sync", cache_policy=NO_CACHE)
async def status_sync_task(mapping_name: str, settings: Any) -> RunSummary:
    """Push the pending ERP status changes of one mapping (one task for the whole pass: the pushes
    inside are batched, rate-limited and retried by the pipeline)."""
    store = open_store(settings)
    try:
        summary = await run_status_sync(settings, store, mapping_name)
        log_summary(summary)
        return summary
    finally:
        store.close()
