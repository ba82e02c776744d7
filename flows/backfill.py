"""Historical backfill (historical: true): a date range cut into partitions that run in parallel,
as tasks in this process or, with ``spread``, as flow runs of the ``backfill-partition``
deployment that any worker of the pool picks up. Resumable: a rerun skips what AppZen already
acknowledged, so it finishes what is left.

Spread partitions share the AppZen quota through the Prefect global concurrency limit
``global_limit`` and each paces at the quota divided by the partitions that run at once
(``parallel``, default all of them; see :mod:`flows.limits`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import arun_deployment
from prefect.utilities.annotations import quote

from flows.common import artifact_key, flow_settings, open_store, publish
from flows.limits import DEFAULT_LIMIT, GlobalRateLimiter, check_limit, partition_rate
from flows.tasks import run_job
from pipeline.errors import RunStopped
from pipeline.load.partition import partition_range
from pipeline.load.sync import SyncOptions
from pipeline.mapping.loader import load_mapping
from pipeline.report.summary import md
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.ratelimit import AdaptiveRateLimiter, RateLimiter
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.records import RunRecord
from pipeline.summary import RunSummary

Ranges = list[tuple[str | None, str | None]]
POLL_SECONDS = 2.0
"""How often a spread backfill asks the server whether its partitions have finished."""


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
    rate: float | None = None,
    global_limit: str | None = DEFAULT_LIMIT,
    credentials_block: str | None = None,
) -> dict[str, object]:
    """One partition of a backfill, run by whichever worker picks it up: ``since < updated_at <=
    until`` at ``rate`` requests/s (default APPZEN_RATE_LIMIT), every request holding a permit
    of the global limit ``global_limit`` (the quota all workers share) unless that is None."""
    settings = await flow_settings(credentials_block)
    pace = rate or settings.appzen_rate_limit
    limiter: RateLimiter = AdaptiveRateLimiter(pace, clock=SYSTEM_CLOCK)
    if global_limit:
        await check_limit(global_limit)
        limiter = GlobalRateLimiter(global_limit, pace, clock=SYSTEM_CLOCK)
    store = open_store(settings)
    try:
        summary = await run_job(
            _options(mapping, since, until, index), settings, store, limiter=limiter
        )
        title = f"Backfill partition {index} of {summary.mapping} ({since} to {until})"
        await publish(title, None, [summary], store)
    finally:
        store.close()
    if summary.fatal:
        raise RunStopped(f"partition {index} stopped: {summary.fatal}")
    return {"index": index, "since": since, "until": until, **summary.as_dict()}


@task(name="backfill-partition", cache_policy=NO_CACHE)
async def partition_task(
    mapping: str, since: str | None, until: str | None, index: int, settings: Any, limiter: Any
) -> RunSummary:
    """One partition in this process, sharing the parent's rate limiter with its siblings."""
    store = open_store(settings)
    try:
        return await run_job(
            _options(mapping, since, until, index), settings, store, limiter=limiter
        )
    finally:
        store.close()


@flow(name="backfill")
async def backfill(
    mapping: str = "mappings/sample_erp.yaml",
    start: date | None = None,
    end: date | None = None,
    partitions: int = 4,
    spread: bool = False,
    parallel: int | None = None,
    deployment: str = "backfill-partition/backfill-partition",
    global_limit: str | None = DEFAULT_LIMIT,
    credentials_block: str | None = None,
) -> list[dict[str, object]]:
    """Backfill ``[start, end]`` (whole days; open ends allowed) in ``partitions`` date ranges.
    With ``spread``, each range is a run of ``deployment`` (any worker of the pool); ``parallel``
    says how many of them the pool runs at once (default: all), to split the quota."""
    settings = await flow_settings(credentials_block)
    name = load_mapping(Path(mapping)).name
    ranges = partition_range(start, end, partitions)
    store = open_store(settings)
    try:
        if spread:
            rows, summaries = await _spread(
                settings,
                store,
                deployment,
                mapping,
                ranges,
                parallel,
                global_limit,
                credentials_block,
            )
        else:
            rows, summaries = await _local(settings, mapping, ranges)
        notes = _partition_table(rows)
        title = f"Backfill of {name} ({start or 'the beginning'} to {end or 'now'})"
        await publish(title, artifact_key("backfill", name), summaries, store, notes)
    finally:
        store.close()
    stopped = [
        f"partition {row['index']}: {row['state']}" for row in rows if row["state"] != "Completed"
    ]
    if stopped:
        raise RunStopped(f"backfill did not complete ({'; '.join(stopped)}); rerun it to finish")
    return rows


async def _local(
    settings: Settings, mapping: str, ranges: Ranges
) -> tuple[list[dict[str, object]], list[RunSummary]]:
    """Every partition as a task of this flow run, all sharing one rate limiter."""
    limiter = AdaptiveRateLimiter(settings.appzen_rate_limit, clock=SYSTEM_CLOCK)
    run_partition: Any = partition_task  # an async task: awaitable, whatever the stubs say
    states: list[State[RunSummary]] = await asyncio.gather(
        *(
            run_partition(
                mapping, since, until, i, quote(settings), quote(limiter), return_state=True
            )
            for i, (since, until) in enumerate(ranges, start=1)
        )
    )
    rows: list[dict[str, object]] = []
    summaries: list[RunSummary] = []
    for i, ((since, until), state) in enumerate(zip(ranges, states, strict=True), start=1):
        outcome = await state.aresult(raise_on_failure=False)
        summary = outcome if isinstance(outcome, RunSummary) else None
        if summary is not None:
            summaries.append(summary)
        label = "Stopped" if summary is not None and summary.fatal else state.name
        rows.append(_row(i, since, until, label or "Unknown", None, summary))
    return rows, summaries


async def _spread(
    settings: Settings,
    store: StagingStore,
    deployment: str,
    mapping: str,
    ranges: Ranges,
    parallel: int | None,
    global_limit: str | None,
    credentials_block: str | None,
) -> tuple[list[dict[str, object]], list[RunSummary]]:
    """Every partition as a run of ``deployment`` (any worker of its pool); their staging runs
    are read back for the summary."""
    if global_limit:
        await check_limit(global_limit)
    rate = partition_rate(settings.appzen_rate_limit, len(ranges), parallel)
    before = _last_run_id(store)
    runs: list[FlowRun] = await asyncio.gather(
        *(
            arun_deployment(
                deployment,
                parameters={
                    "mapping": mapping,
                    "since": since,
                    "until": until,
                    "index": i,
                    "rate": rate,
                    "global_limit": global_limit,
                    "credentials_block": credentials_block,
                },
                timeout=None,
                poll_interval=POLL_SECONDS,
            )
            for i, (since, until) in enumerate(ranges, start=1)
        )
    )
    records = _partition_runs(store, before, load_mapping(Path(mapping)).name, len(ranges))
    rows: list[dict[str, object]] = []
    summaries: list[RunSummary] = []
    for i, ((since, until), run) in enumerate(zip(ranges, runs, strict=True), start=1):
        record = records.get((since, until))
        summary = _from_record(record) if record is not None else None
        if summary is not None:
            summaries.append(summary)
        state = (run.state.name if run.state is not None else None) or "Unknown"
        rows.append(_row(i, since, until, state, run.name, summary))
    return rows, summaries


def _last_run_id(store: StagingStore) -> int:
    latest = store.list_runs(1)
    return latest[0].id if latest else 0


def _partition_runs(
    store: StagingStore, after: int, mapping: str, partitions: int
) -> dict[tuple[str | None, str | None], RunRecord]:
    """The newest backfill run of ``mapping`` per ``(since, until)``, started after run
    ``after`` (the partitions of this backfill)."""
    found: dict[tuple[str | None, str | None], RunRecord] = {}
    for record in store.list_runs(10 * partitions + 100):
        if record.id <= after or record.flow != "backfill" or record.mapping != mapping:
            continue
        bounds = (_text(record.parameters.get("since")), _text(record.parameters.get("until")))
        found.setdefault(bounds, record)
    return found


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _from_record(record: RunRecord) -> RunSummary:
    """A summary rebuilt from a staging run record (counts, status, duration)."""
    finished = record.finished_at
    return RunSummary(
        record.id,
        record.mapping,
        record.flow,
        record.historical,
        False,
        status=record.status,
        counts=Counter(record.counts),
        duration_s=(finished - record.started_at).total_seconds() if finished else 0.0,
    )


def _row(
    index: int,
    since: str | None,
    until: str | None,
    state: str,
    flow_run: str | None,
    summary: RunSummary | None,
) -> dict[str, object]:
    return {
        "index": index,
        "since": since,
        "until": until,
        "state": state,
        "flow_run": flow_run,
        "run_id": summary.run_id if summary is not None else None,
        "status": summary.status if summary is not None else None,
        "fatal": summary.fatal if summary is not None else None,
        "counts": dict(sorted(summary.counts.items())) if summary is not None else {},
    }


def _partition_table(rows: list[dict[str, object]]) -> list[str]:
    lines = [
        "## Partitions",
        "",
        "| partition | since (exclusive) | until (inclusive) | state | flow run | staging run |",
        "|---:|---|---|---|---|---:|",
    ]
    for row in rows:
        cells = [row["index"], row["since"], row["until"], row["state"], row["flow_run"]]
        cells.append(row["run_id"])
        lines.append("| " + " | ".join(md(str(c if c is not None else "")) for c in cells) + " |")
    return [*lines, ""]
