"""Historical backfill (historical: true): a date range cut into partitions that run in parallel,
as tasks in this process or, with ``spread``, as flow runs of the ``backfill-partition``
deployment that any worker of the pool picks up. Resumable: a rerun skips what AppZen already
acknowledged, so it finishes what is left."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import arun_deployment
from prefect.utilities.annotations import quote

from flows.common import flow_settings
from flows.limits import GlobalRateLimiter
from flows.tasks import run_job
from pipeline.errors import RunStopped
from pipeline.load.clock import SYSTEM_CLOCK
from pipeline.load.partition import partition_range
from pipeline.load.ratelimit import AdaptiveRateLimiter, RateLimiter
from pipeline.load.sync import SyncOptions
from pipeline.settings import Settings


def _options(mapping: str, since: str | None, until: str | None, index: int) -> SyncOptions:
    return SyncOptions(
        Path(mapping),
        flow="backfill",
        historical=True,
        incremental=False,
        since=since,
        until=until,
        label=f"backfill-{index}",
    )


@flow(name="backfill-partition")
async def backfill_partition(
    mapping: str,
    since: str | None = None,
    until: str | None = None,
    index: int = 1,
    global_limit: str | None = "appzen-api",
    credentials_block: str | None = None,
) -> dict[str, object]:
    """One partition of a backfill, run by whichever worker picks it up. With ``global_limit``,
    every request takes a permit of that Prefect global concurrency limit (the shared quota)."""
    settings = await flow_settings(credentials_block)
    limiter: RateLimiter | None = None
    if global_limit:
        limiter = GlobalRateLimiter(global_limit, settings.appzen_rate_limit, clock=SYSTEM_CLOCK)
    summary = await run_job(_options(mapping, since, until, index), settings, limiter=limiter)
    if summary.fatal:
        raise RunStopped(f"partition {index} stopped: {summary.fatal}")
    return summary.as_dict()


@task(name="backfill-partition", cache_policy=NO_CACHE)
async def partition_task(
    mapping: str, since: str | None, until: str | None, index: int, settings: Any, limiter: Any
) -> dict[str, object]:
    """One partition in this process, sharing the parent's rate limiter with its siblings."""
    summary = await run_job(_options(mapping, since, until, index), settings, limiter=limiter)
    return summary.as_dict()


@flow(name="backfill")
async def backfill(
    mapping: str = "mappings/sample_erp.yaml",
    start: date | None = None,
    end: date | None = None,
    partitions: int = 4,
    spread: bool = False,
    deployment: str = "backfill-partition/backfill-partition",
    global_limit: str | None = "appzen-api",
    credentials_block: str | None = None,
) -> list[dict[str, object]]:
    """Backfill ``[start, end]`` (whole days; open ends allowed) in ``partitions`` date ranges."""
    settings = await flow_settings(credentials_block)
    ranges = partition_range(start, end, partitions)
    if spread:
        return await _spread(deployment, mapping, ranges, global_limit, credentials_block)
    return await _local(settings, mapping, ranges)


async def _local(
    settings: Settings, mapping: str, ranges: list[tuple[str | None, str | None]]
) -> list[dict[str, object]]:
    limiter = AdaptiveRateLimiter(settings.appzen_rate_limit, clock=SYSTEM_CLOCK)
    results = await asyncio.gather(
        *(
            partition_task(mapping, since, until, i, quote(settings), quote(limiter))
            for i, (since, until) in enumerate(ranges, start=1)
        )
    )
    stopped = [r for r in results if r.get("fatal")]
    if stopped:
        raise RunStopped(f"backfill stopped: {stopped[0]['fatal']}")
    return list(results)


async def _spread(
    deployment: str,
    mapping: str,
    ranges: list[tuple[str | None, str | None]],
    global_limit: str | None,
    credentials_block: str | None,
) -> list[dict[str, object]]:
    runs = await asyncio.gather(
        *(
            arun_deployment(
                deployment,
                parameters={
                    "mapping": mapping,
                    "since": since,
                    "until": until,
                    "index": i,
                    "global_limit": global_limit,
                    "credentials_block": credentials_block,
                },
                timeout=None,
            )
            for i, (since, until) in enumerate(ranges, start=1)
        )
    )
    states = [(r, r.state.name if r.state else "no state") for r in runs]
    failed = [f"{r.name} ({state})" for r, state in states if state != "Completed"]
    if failed:
        raise RunStopped(f"backfill partitions did not complete: {', '.join(failed)}")
    return [{"flow_run": str(r.id), "name": r.name, "state": state} for r, state in states]
