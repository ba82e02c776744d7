"""The sync job: one run of a mapping (nightly, a backfill partition, a retry), batch by batch."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from pipeline.appzen.client import AppZenClient
from pipeline.jobs.reports import attach_reports
from pipeline.load.sync import Result, SyncJob, SyncOptions, drive
from pipeline.redact import register_settings
from pipeline.runtime.ratelimit import RateLimiter
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary

__all__ = ["BatchRunner", "Progress", "Result", "SyncJob", "SyncOptions", "run"]

Progress = Callable[[RunSummary], None]
"""Called with the run's summary once at the start and after every batch (progress lines)."""
BatchRunner = Callable[[SyncJob, list[Result]], Awaitable[None]]
"""Runs one batch of the job, e.g. as a Prefect task: it must end in ``job.process(batch)``."""


async def run(
    settings: Settings,
    store: StagingStore,
    options: SyncOptions,
    *,
    client: AppZenClient | None = None,
    limiter: RateLimiter | None = None,
    on_progress: Progress | None = None,
    per_batch: BatchRunner | None = None,
) -> RunSummary:
    """Run ``options`` to the end (a fatal AppZen answer stops it: ``summary.fatal``); the
    summary with its failed-row reports attached. ``limiter`` shares a rate limit with other
    jobs (a backfill's partitions); ``per_batch`` wraps each batch (default: in place)."""
    register_settings(settings)
    job = SyncJob(options, settings, store=store, client=client, limiter=limiter)
    job.on_progress = on_progress
    process = functools.partial(per_batch, job) if per_batch is not None else None
    async with job:
        if on_progress is not None:  # sources open, run recorded: progress follows it from now
            on_progress(job.summary)
        await drive(job, process)
    return attach_reports(store, settings, job.summary)
