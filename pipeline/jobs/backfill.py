"""The backfill job: a date range cut into partitions, each a sync run (``historical: true``)
linked by id to the backfill's own run record, its parent.

The parent is a ``backfill`` run whose parameters are the plan's and whose counts, once the
partitions are done, are their total; each partition's run names it (``parent_run_id``), so
:func:`partition_runs` finds exactly this backfill's partitions even while another backfill of
the same mapping runs. A dry run records nothing: no parent, no partition runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Final, TypeVar

from pipeline.appzen.client import AppZenClient
from pipeline.jobs import sync
from pipeline.load.partition import partition_range
from pipeline.load.sync import SyncOptions
from pipeline.mapping.loader import load_mapping
from pipeline.runtime.ratelimit import RateLimiter
from pipeline.settings import Settings
from pipeline.staging import RunRecord, RunStatus, StagingError, StagingStore
from pipeline.staging.backfilldays import day_table
from pipeline.staging.budget import BudgetPolicy, Forecast
from pipeline.staging.owners import Heartbeat, Owner
from pipeline.summary import RunSummary

FLOW: Final = "backfill"
Bounds = tuple[str | None, str | None]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackfillPartition:
    """One partition: ``since < updated_at <= until`` of the mapping's source, as a sync run
    started under the parent run ``parent_run_id`` (None: a dry run, or run on its own)."""

    mapping: Path
    index: int
    since: str | None
    until: str | None
    parent_run_id: int | None = None
    dry_run: bool = False

    @property
    def bounds(self) -> Bounds:
        """``(since, until)`` as the partition's run records them."""
        return (self.since, self.until)

    def options(self) -> SyncOptions:
        """The sync options of this partition (full extraction of its range, historical)."""
        return SyncOptions(
            self.mapping,
            flow=FLOW,
            historical=True,
            incremental=False,
            since=self.since,
            until=self.until,
            dry_run=self.dry_run,
            label=f"backfill-{self.index}",
            parent_run_id=self.parent_run_id,
        )


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    """A backfill of ``[start, end]`` (whole days, inclusive; open ends allowed) of a mapping in
    ``partitions`` contiguous date ranges."""

    mapping: Path
    start: date | None = None
    end: date | None = None
    partitions: int = 1
    dry_run: bool = False

    def ranges(self) -> list[Bounds]:
        """The partitions' ``(since, until)`` bounds (ValueError for a reversed range)."""
        return partition_range(self.start, self.end, self.partitions)

    def partitions_of(self, parent_run_id: int | None) -> list[BackfillPartition]:
        """Every partition, numbered from 1, each started under ``parent_run_id``."""
        return [
            BackfillPartition(self.mapping, i, since, until, parent_run_id, self.dry_run)
            for i, (since, until) in enumerate(self.ranges(), start=1)
        ]

    def mapping_name(self) -> str:
        """The name of the plan's mapping (its ``name:``, else the file's stem)."""
        return load_mapping(self.mapping).name

    def parameters(self) -> dict[str, object]:
        """The parameters the parent run records."""
        return {
            "mapping": str(self.mapping),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "partitions": self.partitions,
        }


@dataclass(slots=True)
class ParentRun:
    """The backfill's own run record while its partitions run; ``id`` is None in a dry run."""

    id: int | None
    expected: int
    summaries: list[RunSummary] = field(default_factory=list)
    beat: Heartbeat | None = None
    """Renews the parent run's lease while the backfill runs (so a dead one is marked crashed)."""

    def add(self, summary: RunSummary) -> None:
        """Count a finished partition into the parent."""
        self.summaries.append(summary)

    def outcome(self) -> RunStatus:
        """``succeeded`` when every partition ran and succeeded, ``partial`` when some skipped
        invoices another live run held (and the rest succeeded), ``cancelled`` when one was
        stopped by SIGTERM, else ``failed``."""
        done = len(self.summaries) == self.expected
        ok = done and all(
            s.status in ("succeeded", "partial") and not s.fatal for s in self.summaries
        )
        if not ok:
            return "cancelled" if any(s.cancelled for s in self.summaries) else "failed"
        return "partial" if any(s.status == "partial" for s in self.summaries) else "succeeded"

    def counts(self) -> dict[str, int]:
        """The partitions' counts added up."""
        total: Counter[str] = Counter()
        for summary in list(self.summaries):  # also read by the heartbeat's thread
            total.update(summary.counts_snapshot())
        return dict(total)


@contextmanager
def parent_run(store: StagingStore, plan: BackfillPlan) -> Iterator[ParentRun]:
    """The parent run of ``plan`` (``running`` inside the block), closed on the way out with the
    partitions' total counts: ``succeeded``, ``failed`` (a partition missing, failed or
    stopped) or ``interrupted`` (an error or Ctrl-C left the block)."""
    parent = ParentRun(None, expected=len(plan.ranges()))
    if not plan.dry_run:
        parent.id, parent.beat = store.start_owned_run(
            FLOW,
            plan.mapping_name(),
            plan.parameters(),
            True,
            owner=Owner.of_this_process(FLOW),
            counts=parent.counts,
        )
    try:
        yield parent
    except BaseException:
        _finish_parent(store, parent, "interrupted")
        raise
    _finish_parent(store, parent, parent.outcome())


def _finish_parent(store: StagingStore, parent: ParentRun, status: RunStatus) -> None:
    if parent.beat is not None:
        parent.beat.stop()
    if parent.id is None:
        return
    try:
        store.finish_run(parent.id, status=status, counts=parent.counts())
    except StagingError as error:
        if status != "interrupted":
            raise
        log.warning("backfill run %s stays 'running' in staging: %s", parent.id, error)


async def run_partition(
    settings: Settings,
    store: StagingStore,
    partition: BackfillPartition,
    *,
    client: AppZenClient | None = None,
    limiter: RateLimiter | None = None,
    on_progress: sync.Progress | None = None,
    per_batch: sync.BatchRunner | None = None,
) -> RunSummary:
    """Run one partition to the end: a sync run of its range whose record names its parent;
    the summary with its failed-row reports attached."""
    return await sync.run(
        settings,
        store,
        partition.options(),
        client=client,
        limiter=limiter,
        on_progress=on_progress,
        per_batch=per_batch,
    )


def connections_per_partition(mapping: Path) -> int:
    """ERP connections one partition of ``mapping`` holds at once while it reads: one per SQL
    source it streams (its source and its lines source), at least one."""
    spec = load_mapping(mapping)
    sources = (spec.source, spec.lines_source)
    return max(1, sum(1 for source in sources if source is not None and source.kind == "sql"))


def partitions_at_once(
    settings: Settings, mapping: Path, partitions: int, *, cores: int | None = None
) -> int:
    """How many of ``partitions`` partitions of ``mapping`` run at once: no more than the
    machine's ``cores`` (default: this machine's), nor than ``ERP_MAX_CONNECTIONS`` allows
    with the connections each holds (:func:`connections_per_partition`); at least one."""
    cores = cores or os.cpu_count() or 1
    budget = settings.erp_max_connections // connections_per_partition(mapping)
    return max(1, min(partitions, cores, budget))


T = TypeVar("T")


async def run_partitions(
    partitions: Sequence[BackfillPartition],
    run: Callable[[BackfillPartition], Awaitable[T]],
    at_once: int,
) -> list[T | BaseException]:
    """``run`` each partition, ``at_once`` at a time (their reads, mapping and posting overlap),
    in the order given; each partition's result or the exception that stopped it, in that
    order: a failing partition stops neither the others nor those still waiting."""
    if at_once < 1:
        raise ValueError(f"partitions at once must be at least 1, not {at_once}")
    slots = asyncio.Semaphore(at_once)

    async def one(partition: BackfillPartition) -> T:
        async with slots:
            return await run(partition)

    found = await asyncio.gather(*(one(part) for part in partitions), return_exceptions=True)
    for outcome in found:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # a cancel or an interrupt is not a partition's failure
    return found


@dataclass(frozen=True, slots=True)
class BackfillForecast:
    """What a backfill needs (``backfill --plan``): the invoices of its range, how many need a
    request (new or changed since AppZen's ack), and the AppZen days that takes."""

    mapping: str
    start: date | None
    end: date | None
    invoices: int
    to_send: int
    unchanged: int
    refused: int
    days: Forecast

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "mapping": self.mapping,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "invoices": self.invoices,
            "to_send": self.to_send,
            "unchanged": self.unchanged,
            "refused": self.refused,
            **self.days.as_dict(),
        }


async def forecast(settings: Settings, store: StagingStore, plan: BackfillPlan) -> BackfillForecast:
    """Read and map the plan's range as a dry run (nothing sent, nothing recorded), count what
    needs a request, and forecast the AppZen days it takes under the daily budget (less the other
    flows' reservations and what is used today) at ``APPZEN_RATE_LIMIT``."""
    counts: Counter[str] = Counter()
    for part in replace(plan, dry_run=True).partitions_of(None):
        summary = await run_partition(settings, store, part)
        counts.update(summary.counts)
    to_send = counts["planned_create"] + counts["planned_update"]
    refused = counts["failed_mapping"] + counts["failed_validation"] + counts["rejected_unchanged"]
    return BackfillForecast(
        mapping=plan.mapping_name(),
        start=plan.start,
        end=plan.end,
        invoices=counts["extracted"],
        to_send=to_send,
        unchanged=counts["unchanged"],
        refused=refused,
        days=await asyncio.to_thread(store.budget_forecast, settings, FLOW, to_send),
    )


def partition_runs(store: StagingStore, parent_run_id: int) -> dict[Bounds, RunRecord]:
    """The run of each partition of the backfill ``parent_run_id``, by its ``(since, until)``;
    the newest when a partition ran twice (a retried flow run)."""
    found: dict[Bounds, RunRecord] = {}
    for record in store.runs_of_parent(parent_run_id):  # oldest first: the newest wins
        found[(_text(record.parameters.get("since")), _text(record.parameters.get("until")))] = (
            record
        )
    return found


def summary_of(record: RunRecord) -> RunSummary:
    """A summary rebuilt from a partition's run record (counts, status, duration)."""
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


def summaries_of(
    store: StagingStore, parent_run_id: int, partitions: Sequence[BackfillPartition]
) -> list[RunSummary | None]:
    """Each partition's summary from its run record (None: it left no run), in order."""
    records = partition_runs(store, parent_run_id)
    found = (records.get(partition.bounds) for partition in partitions)
    return [summary_of(record) if record is not None else None for record in found]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def budget_resumes(settings: Settings, now: datetime) -> tuple[datetime, str]:
    """When the daily AppZen budget starts afresh after ``now`` (midnight of the next AppZen day,
    ``APPZEN_BUDGET_TIMEZONE``) and that zone's name: when a budget-stopped backfill resumes."""
    policy = BudgetPolicy.from_settings(settings)
    return policy.next_day(now), policy.zone


def day_lines(settings: Settings, store: StagingStore, parent_run_id: int) -> list[str]:
    """The backfill's progress per AppZen day as a markdown section (day N: the invoices sent,
    left after it, the budget used; the days of the runs it resumes first), or no lines for a
    backfill of one day that the budget did not stop."""
    days = store.backfill_days(settings, parent_run_id)
    spans_days = len(days) > 1 or any(d.left is None for d in days)
    return day_table(days) if spans_days else []
