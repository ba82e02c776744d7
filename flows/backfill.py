"""Historical backfill (historical: true): a date range cut into partitions that run in parallel,
as tasks in this process or, with ``spread``, as flow runs of the ``backfill-partition``
deployment that any worker of the pool picks up. Resumable: a rerun skips what AppZen already
acknowledged, so it finishes what is left.

Partitions share the AppZen quota through the Prefect global concurrency limit ``global_limit``
with every other flow; a spread partition starts at the quota divided by the partitions that run
at once (``parallel``, default all of them) and climbs to the configured rate when the limit lets
it (see :mod:`flows.limits`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import FlowRun, State
from prefect.deployments import arun_deployment
from prefect.states import Cancelled, Completed
from prefect.utilities.annotations import quote

from flows.common import artifact_key, flow_settings, log_summary, publish, run_progress
from flows.limits import DEFAULT_LIMIT, OFF, partition_rate
from flows.parameters import (
    BlockName,
    Day,
    DeploymentName,
    LimitName,
    MappingRef,
    Parallel,
    PartitionIndex,
    Partitions,
    PartitionTimeout,
    Rate,
    ResumeNextDay,
    RunId,
)
from flows.resume import resume_next_day as reschedule
from flows.tasks import batch_task
from pipeline.errors import RunStopped
from pipeline.jobs import backfill as backfill_job
from pipeline.jobs.backfill import BackfillPartition, BackfillPlan, ParentRun
from pipeline.jobs.runlog import partition_ended, partition_started
from pipeline.jobs.store import StagingStore, open_store
from pipeline.report.summary import md
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.ratelimit import AdaptiveRateLimiter, RateLimiter
from pipeline.runtime.shared import shared_name
from pipeline.runtime.stop import sigterm_stops_runs
from pipeline.settings import Settings
from pipeline.summary import RunSummary

POLL_SECONDS = 2.0
PARTITION_TIMEOUT_S = 24 * 3600.0
"""How long a spread backfill waits for its partition runs by default (a lost worker's run
would otherwise hold the parent, and its worker slot, forever)."""
"""How often a spread backfill asks the server whether its partitions have finished."""
Rows = list[dict[str, object]]
T = TypeVar("T")


@flow(name="backfill-partition")
async def backfill_partition(
    mapping: MappingRef,
    since: str | None = None,
    until: str | None = None,
    index: PartitionIndex = 1,
    rate: Rate = None,
    global_limit: LimitName = DEFAULT_LIMIT,
    credentials_block: BlockName = None,
    parent_run_id: RunId = None,
    resume_next_day: ResumeNextDay = True,
) -> dict[str, object]:
    """One partition of a backfill, run by whichever worker picks it up: ``since < updated_at <=
    until``, every request holding a permit of the global limit ``global_limit`` (the quota all
    flows and workers share) unless that is None. It starts at ``rate`` requests/s (default
    APPZEN_RATE_LIMIT) and, when sharing the limit, climbs to APPZEN_RATE_LIMIT when the limit
    lets it (the share follows the partitions that run); unshared, it stays at ``rate``.
    ``parent_run_id``: the staging run of the backfill that started it. SIGTERM (a cancel) stops
    it cleanly (``cancelled``) and ends the flow run Cancelled. Run alone (no parent) and
    stopped by the spent daily budget, it schedules itself again at the next AppZen day's start
    unless ``resume_next_day`` is off (:mod:`flows.resume`); a parent's partition leaves that to
    its parent."""
    settings = await flow_settings(credentials_block, global_limit=global_limit or OFF)
    limiter = partition_limiter(settings, rate)
    part = BackfillPartition(Path(mapping), index, since, until, parent_run_id)
    store = open_store(settings)
    try:
        summary = await sigterm_stops_runs(_run_partition(settings, store, part, limiter))
        resumes = None
        if summary.budget_spent and parent_run_id is None:
            resumes = await reschedule(settings, f"backfill partition {index}", resume_next_day)
        title = f"Backfill partition {index} of {summary.mapping} ({since} to {until})"
        notes = [resumes.line(f"partition {index}"), ""] if resumes is not None else []
        await publish(title, None, [summary], store, notes, reports_url=settings.appzen_reports_url)
    finally:
        store.close()
    result = {"index": index, "since": since, "until": until, **summary.as_dict()}
    if summary.cancelled:  # a returned state is the flow run's final state (Prefect)
        return Cancelled(message=f"partition {index} {summary.fatal}")  # type: ignore[return-value]
    if resumes is not None and resumes.flow_run is not None:
        return _completed(resumes.line(f"partition {index}"), result)
    if summary.fatal:
        raise RunStopped(f"partition {index} stopped: {summary.fatal}")
    return result


def partition_limiter(settings: Settings, rate: float | None) -> RateLimiter:
    """A partition's own pace: from ``rate`` (its share), up to APPZEN_RATE_LIMIT when the
    quota is shared through a global limit that holds it back while others run; without one,
    the share is all the protection there is, so it stays there."""
    pace = min(rate or settings.appzen_rate_limit, settings.appzen_rate_limit)
    shared = shared_name(settings.appzen_global_limit) is not None
    ceiling = settings.appzen_rate_limit if shared else pace
    return AdaptiveRateLimiter(pace, clock=SYSTEM_CLOCK, max_rate=ceiling)


def _completed(message: str, result: T) -> T:
    """The flow run's final state, Completed with ``message``: Prefect makes a returned state
    the run's own, and a caller of the flow still gets ``result`` (the state's data)."""
    return cast(T, Completed(message=message, data=result))


@task(name="backfill-partition", cache_policy=NO_CACHE)
async def partition_task(part: Any, settings: Any, limiter: Any) -> RunSummary:
    """One partition in this process, sharing the parent's rate limiter with its siblings."""
    store = open_store(settings)
    try:
        return await _run_partition(settings, store, part, limiter)
    finally:
        store.close()


async def _run_partition(
    settings: Settings, store: StagingStore, part: BackfillPartition, limiter: RateLimiter
) -> RunSummary:
    with run_progress(settings) as progress:
        summary = await backfill_job.run_partition(
            settings, store, part, limiter=limiter, per_batch=batch_task, on_progress=progress
        )
    return log_summary(summary)


@flow(name="backfill")
async def backfill(
    mapping: MappingRef = "mappings/sample_erp.yaml",
    start: Day = None,
    end: Day = None,
    partitions: Partitions = 4,
    spread: bool = False,
    parallel: Parallel = None,
    deployment: DeploymentName = "backfill-partition/backfill-partition",
    global_limit: LimitName = DEFAULT_LIMIT,
    credentials_block: BlockName = None,
    partition_timeout: PartitionTimeout = PARTITION_TIMEOUT_S,
    resume_next_day: ResumeNextDay = True,
) -> Rows:
    """Backfill ``[start, end]`` (whole days; open ends allowed) in ``partitions`` date ranges.
    With ``spread``, each range is a run of ``deployment`` (any worker of the pool); ``parallel``
    says how many of them the pool runs at once (default: all), to split the quota. The backfill
    is a staging run of its own that every partition's run names (``parent_run_id``). A spread
    partition not finished after ``partition_timeout`` seconds is reported lost (its state then,
    e.g. ``Lost (Running)``) instead of being waited for forever, and the backfill ends Failed.
    Stopped only by the spent daily AppZen budget, it schedules itself again (same parameters)
    at the next AppZen day's start and ends Completed saying when it resumes, unless
    ``resume_next_day`` is off or it was not run from a deployment (:mod:`flows.resume`).
    SIGTERM (a cancel) stops its local partitions cleanly (``cancelled``) and ends the flow run
    Cancelled."""
    # spread: the partitions need the limit (strict); here, the one every flow finds
    shared = (global_limit or OFF) if spread else None
    settings = await flow_settings(credentials_block, global_limit=shared)
    plan = BackfillPlan(Path(mapping), start, end, partitions)
    name = plan.mapping_name()
    store = open_store(settings)
    try:
        with backfill_job.parent_run(store, plan) as parent:
            parts = plan.partitions_of(parent.id)
            if spread:
                spec = _Spread(
                    deployment, parallel, global_limit, credentials_block, partition_timeout
                )
                rows = await _spread(settings, store, parts, spec, parent)
            else:  # SIGTERM (a cancel) stops every local partition cleanly
                rows = await sigterm_stops_runs(_local(settings, parts, parent))
        stopped = [row for row in rows if row["state"] != "Completed"]
        resumes = None
        if stopped and all(row["budget_spent"] for row in stopped):
            resumes = await reschedule(settings, "backfill", resume_next_day)
        assert parent.id is not None  # a flow's backfill is never a dry run
        days = await asyncio.to_thread(backfill_job.day_lines, settings, store, parent.id)
        notes = [*days, *_partition_table(rows)]
        if resumes is not None:
            notes = [resumes.line("backfill"), "", *notes]
        title = f"Backfill of {name} ({start or 'the beginning'} to {end or 'now'})"
        await publish(
            title,
            artifact_key("backfill", name),
            parent.summaries,
            store,
            notes,
            reports_url=settings.appzen_reports_url,
        )
    finally:
        store.close()
    if resumes is not None and resumes.flow_run is not None:
        return _completed(resumes.line("backfill"), rows)
    cancelled = [summary for summary in parent.summaries if summary.cancelled]
    if cancelled:  # a returned state is the flow run's final state (Prefect)
        return Cancelled(message=f"backfill run {parent.id} {cancelled[0].fatal}")  # type: ignore[return-value]
    if stopped:
        states = "; ".join(f"partition {row['index']}: {row['state']}" for row in stopped)
        raise RunStopped(f"backfill did not complete ({states}); rerun it to finish")
    return rows


async def _local(settings: Settings, parts: list[BackfillPartition], parent: ParentRun) -> Rows:
    """Every partition as a task of this flow run, all sharing one rate limiter; as many at once
    as the cores and ``ERP_MAX_CONNECTIONS`` allow (:func:`backfill_job.partitions_at_once`)."""
    limiter = AdaptiveRateLimiter(settings.appzen_rate_limit, clock=SYSTEM_CLOCK)
    run_partition: Any = partition_task  # an async task: awaitable, whatever the stubs say

    async def one(part: BackfillPartition) -> dict[str, object]:
        _log_start(part, len(parts))
        state: State[RunSummary] = await run_partition(
            quote(part), quote(settings), quote(limiter), return_state=True
        )
        outcome = await state.aresult(raise_on_failure=False)
        summary = outcome if isinstance(outcome, RunSummary) else None
        label = "Stopped" if summary is not None and summary.fatal else state.name
        _log_end(part, len(parts), label or "Unknown", summary)
        return _row(part, label or "Unknown", None, summary)

    mapping = parts[0].mapping if parts else Path()
    at_once = backfill_job.partitions_at_once(settings, mapping, len(parts)) if parts else 1
    found = await backfill_job.run_partitions(parts, one, at_once)
    for outcome in found:
        if isinstance(outcome, BaseException):
            raise outcome
    return _added(parent, [row for row in found if not isinstance(row, BaseException)])


def _added(parent: ParentRun, rows: Sequence[dict[str, object]]) -> Rows:
    """The rows without their summaries, each partition's summary counted into the parent."""
    kept: Rows = []
    for row in rows:
        summary = row.pop("summary")
        if isinstance(summary, RunSummary):
            parent.add(summary)
        kept.append(row)
    return kept


def _log_start(part: BackfillPartition, total: int) -> None:
    get_run_logger().info(partition_started(part, total))


def _log_end(part: BackfillPartition, total: int, state: str, summary: RunSummary | None) -> None:
    level, line = partition_ended(part, total, state, summary)
    get_run_logger().log(level, line)


@dataclass(frozen=True, slots=True)
class _Spread:
    """Where a spread backfill's partitions run and how they share the quota."""

    deployment: str
    parallel: int | None
    global_limit: str | None
    credentials_block: str | None
    timeout_s: float = PARTITION_TIMEOUT_S


async def _spread(
    settings: Settings,
    store: StagingStore,
    parts: list[BackfillPartition],
    spread: _Spread,
    parent: ParentRun,
) -> Rows:
    """Every partition as a run of the deployment (any worker of its pool); their staging runs
    are found by the parent's id and read back for the summary."""
    rate = partition_rate(settings.appzen_rate_limit, len(parts), spread.parallel)
    assert parent.id is not None  # a flow's backfill is never a dry run
    parent_id = parent.id

    async def one(part: BackfillPartition) -> dict[str, object]:
        _log_start(part, len(parts))
        run: FlowRun = await arun_deployment(
            spread.deployment,
            parameters={
                "mapping": str(part.mapping),
                "since": part.since,
                "until": part.until,
                "index": part.index,
                "rate": rate,
                "global_limit": spread.global_limit,
                "credentials_block": spread.credentials_block,
                "parent_run_id": part.parent_run_id,
            },
            timeout=spread.timeout_s,
            poll_interval=POLL_SECONDS,
        )
        [summary] = await asyncio.to_thread(backfill_job.summaries_of, store, parent_id, [part])
        state = _final_name(run)
        _log_end(part, len(parts), state, summary)
        return _row(part, state, run.name, summary)

    return _added(parent, await asyncio.gather(*(one(part) for part in parts)))


def _final_name(run: FlowRun) -> str:
    """The partition run's final state's name, or ``Lost (Running)`` when it had not finished
    when the parent stopped waiting."""
    state = run.state
    if state is None:
        return "Lost (no state)"
    return (state.name or "Unknown") if state.is_final() else f"Lost ({state.name})"


def _row(
    part: BackfillPartition, state: str, flow_run: str | None, summary: RunSummary | None
) -> dict[str, object]:
    return {
        "index": part.index,
        "since": part.since,
        "until": part.until,
        "state": state,
        "flow_run": flow_run,
        "run_id": summary.run_id if summary is not None else None,
        "status": summary.status if summary is not None else None,
        "fatal": summary.fatal if summary is not None else None,
        "budget_spent": summary.budget_spent if summary is not None else False,
        "counts": dict(sorted(summary.counts.items())) if summary is not None else {},
        "summary": summary,
    }


def _partition_table(rows: Rows) -> list[str]:
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
