"""The tasks flows are made of: one per batch of invoices (never one per invoice), and one for a
status-sync pass. The jobs themselves are :mod:`pipeline.jobs`; a task only wraps one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.common import log_summary, only_transient, run_progress
from pipeline.jobs import status as status_job
from pipeline.jobs.status import StatusOptions
from pipeline.jobs.store import open_store
from pipeline.jobs.sync import Result, SyncJob
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


async def batch_task(job: SyncJob, batch: list[Result]) -> None:
    """The jobs' ``per_batch`` hook in a flow: each batch is one ``post-batch`` task run."""
    await post_batch(quote(job), quote(batch))


@task(name="status-sync", cache_policy=NO_CACHE)
async def status_sync_task(mapping: str, settings: Any) -> RunSummary:
    """Push the pending ERP status changes of one mapping file (one task for the whole pass: the
    pushes inside are batched, rate-limited and retried by the pipeline)."""
    store = open_store(settings)
    try:
        with run_progress(settings) as progress:
            options = StatusOptions(Path(mapping))
            summary = await status_job.run(settings, store, options, on_progress=progress)
        log_summary(summary)
        return summary
    finally:
        store.close()
