"""Status push-back: tell AppZen the ERP-side state of every invoice whose ERP status changed.

A mapping with a status read (``status.source``) has its current ERP statuses read first
(:mod:`pipeline.status.read`), so a status that changed in the ERP since the last sync (a
payment recorded in another table, with the invoice's ``updated_at`` unmoved) is pushed too.
One status-sync per mapping runs at a time (a lock held through staging), so two runs started
at once never push the same change twice.

For each staged invoice with a uuid whose (ERP status, ERP error) differs from what was last
pushed, ``POST /invoice/{uuid}/status-sync``: state ``CREATED`` with ``invoice_id`` and
``invoice_status``, or ``ERROR`` with ``error_data`` when the ERP reported that it could not take
the invoice. Pushes go through the same :class:`~pipeline.runtime.dispatch.Dispatcher` as posting
(rate limit, concurrency, retries). What was pushed is recorded per batch, so an unchanged status
is never pushed twice; a 404 marks the invoice for re-creation on the next sync.

A status reaches AppZen twice only when its first push's answer was lost, and each such push is
counted (upper bounds: the lost request may never have arrived): ``repushed_after_lost_answer``
when a 5xx, timeout or dropped connection was retried within the run, ``repushed_after_crash``
when the push a killed run sent out (staging's ``push_in_doubt``) is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pipeline.appzen.client import AppZenClient, Reply, client_session
from pipeline.errors import RemoteError, RunCancelled
from pipeline.extract.base import SourceError
from pipeline.redact import scrub
from pipeline.runtime import stop
from pipeline.runtime.clock import SYSTEM_CLOCK, Clock
from pipeline.runtime.dispatch import Dispatcher
from pipeline.settings import Settings
from pipeline.staging import StagingError, StagingStore
from pipeline.staging.budget import close_budget
from pipeline.staging.locks import NamedLock
from pipeline.staging.owners import Heartbeat, Owner
from pipeline.staging.records import RunStatus, StatusCandidate
from pipeline.status.pushes import Push, StatusSyncResult, handled, plan, record
from pipeline.status.read import STATUS_FLOW, ReadOutcome, StatusReader, refresh_statuses
from pipeline.status.stopping import StopOnRequest
from pipeline.summary import RunSummary

PAGE = 500
LOCK_POLL_S = 0.2
"""How often a status-sync waiting for another one of the same mapping tries its lock."""
log = logging.getLogger(__name__)


async def push_statuses(
    store: StagingStore,
    client: AppZenClient,
    dispatcher: Dispatcher,
    mapping: str,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    page: int = PAGE,
    dry_run: bool = False,
    read: ReadOutcome | None = None,
    result: StatusSyncResult | None = None,
) -> StatusSyncResult:
    """Push every pending status change of ``mapping``, a page at a time. A dry run plans the
    same pushes and sends nothing; with the ``read`` of a dry run (which recorded nothing), the
    statuses it read replace what staging holds. Counts go into ``result`` when given (so a
    heartbeat can read the counts so far)."""
    result = result if result is not None else StatusSyncResult(Counter(), [])
    after: str | None = None
    started: set[str] = set()  # the invoices whose push went out

    def push(p: Push) -> Awaitable[Reply]:
        started.add(p.candidate.invoice_id)  # a request goes out: in doubt until answered
        return client.status_sync(p.candidate.uuid, p.body)

    while result.fatal is None:
        candidates = await asyncio.to_thread(store.status_candidates, mapping, page, after)
        if not candidates:
            break
        after = candidates[-1].invoice_id
        moment = now()
        if dry_run:
            result.planned += plan(_as_read(candidates, read), moment, result)[0]
            continue
        todo, idle = plan(candidates, moment, result)
        # Nothing to report for these: remember their ERP state as handled, so they stop coming.
        await asyncio.to_thread(store.record_pushes, mapping, [handled(c) for c in idle], moment)
        # Written before the requests go out: a crash before record leaves them in doubt.
        out = [handled(push.candidate) for push in todo]
        await asyncio.to_thread(store.mark_pushes_in_doubt, mapping, out)
        report = await dispatcher.run(todo, push)
        result.counts["retries"] += report.retries
        # A stop (SIGTERM, a spent budget) left these unsent: not in doubt, merely pending.
        unsent = [
            p.candidate.invoice_id
            for p in todo
            if p.candidate.invoice_id not in started and not p.candidate.pushed_in_doubt
        ]
        await asyncio.to_thread(
            record, store, mapping, report.results, moment, result, unsent=unsent
        )
        result.fatal = report.fatal
    if dry_run:
        rest = [] if read is None else [read.would_push[key] for key in sorted(read.would_push)]
        result.planned += plan(rest, now(), result)[0]
        result.counts["would_push"] = len(result.planned)
    return result


def _as_read(candidates: list[StatusCandidate], read: ReadOutcome | None) -> list[StatusCandidate]:
    """Pending candidates as a dry run's status read left them: settled ones dropped, changed
    ones with the status read (taken out of ``read.would_push``, which keeps the rest)."""
    if read is None:
        return candidates
    kept = [c for c in candidates if c.invoice_id not in read.settled]
    return [read.would_push.pop(c.invoice_id, c) for c in kept]


async def run_status_sync(
    settings: Settings,
    store: StagingStore,
    mapping: str,
    *,
    dry_run: bool = False,
    client: AppZenClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    dispatcher: Dispatcher | None = None,
    open_reader: Callable[[], StatusReader | None] | None = None,
    on_progress: Callable[[RunSummary], None] | None = None,
) -> RunSummary:
    """Push every pending status change of ``mapping`` as one recorded run (flow status_sync).
    ``on_progress`` is called once, when the run is open, with a summary whose counts are those
    of the pushes as they are recorded (for a progress line).

    With ``open_reader`` (opens the mapping's status read), current ERP statuses are read first
    and the changed ones recorded in staging (:func:`~pipeline.status.read.refresh_statuses`);
    then every pending change is pushed. A status read that fails (:class:`SourceError`: the ERP
    down, a query error) stops the run before any push: it is recorded ``failed`` with the
    error's one line as its reason, and the pending changes wait for the next run.

    One run per mapping at a time: a second waits for the first's lock
    (:meth:`StagingStore.named_lock`), then finds nothing left that the first pushed.
    ``dispatcher`` shares a rate limiter and retry policy with other work (the sync before it);
    by default one is built from ``settings``, exactly as posting builds its own."""
    summary = RunSummary(None, mapping, STATUS_FLOW, False, dry_run)
    started = time.monotonic()
    result = StatusSyncResult(Counter(), [])
    beat: Heartbeat | None = None
    if not dry_run:
        summary.run_id, beat = store.start_owned_run(
            STATUS_FLOW,
            mapping,
            {},
            False,
            owner=Owner.of_this_process(STATUS_FLOW),
            counts=lambda: _snapshot(result.counts),
        )
    _follow(on_progress, summary, result)
    status: RunStatus = "interrupted"
    lock = None if dry_run else store.named_lock(f"status-sync:{mapping}")
    held = False
    stopper = StopOnRequest()
    listening = stop.listening(stopper)  # SIGTERM from here on: a clean stop
    listening.__enter__()
    try:
        held = lock is not None and await _wait_for(lock, stopper)
        read = None
        if open_reader is not None and stopper.error is None:
            try:
                read = await asyncio.to_thread(_read, store, mapping, open_reader, dry_run)
            except SourceError as error:
                summary.stop(error)
                summary.fatal = summary.reason = scrub(str(error))
                status = "failed"
                return summary  # the run is closed below
        if read is not None:
            summary.counts.update(read.counts)
            summary.failures += read.failures
        if stopper.error is None:
            await _push(
                settings,
                store,
                summary,
                result,
                read=read,
                client=client,
                clock=clock,
                dispatcher=dispatcher,
                stopper=stopper,
            )
        summary.counts.update(result.counts)
        summary.failures += result.failures
        summary.planned = [_planned(push) for push in result.planned]
        stopped = result.fatal or stopper.error
        if stopped is not None:
            summary.stop(stopped)
        status = _status(stopped)
        summary.reason = summary.fatal
        summary.watermark = read.watermark if read is not None and not result.fatal else None
    finally:
        listening.__exit__(None, None, None)
        if beat is not None:
            beat.stop()
        if held and lock is not None:
            await asyncio.to_thread(lock.release)
        summary.duration_s = summary.posting_s = time.monotonic() - started
        summary.status = status
        if summary.run_id is not None:
            _close_run(store, summary, mapping, status)
    return summary


async def _push(
    settings: Settings,
    store: StagingStore,
    summary: RunSummary,
    result: StatusSyncResult,
    *,
    read: ReadOutcome | None,
    client: AppZenClient | None,
    clock: Clock,
    dispatcher: Dispatcher | None,
    stopper: StopOnRequest,
) -> None:
    """Push the pending changes through ``dispatcher``, or one paced from the rate earlier runs
    learned and taking from the daily budget (both closed here, whatever happens); a stop
    request stops it (``stopper``)."""
    own = not summary.dry_run and dispatcher is None
    budget = store.daily_budget(settings, STATUS_FLOW) if own else None
    memory = store.rate_memory(settings, "status") if own else None
    limiter = memory.limiter(settings.appzen_rate_limit, clock) if memory else None
    async with client_session(settings, client) as session:
        calls = dispatcher or Dispatcher.from_settings(settings, clock, limiter, budget=budget)
        stopper.watch(calls)
        try:
            await push_statuses(
                store,
                session,
                calls,
                summary.mapping,
                dry_run=summary.dry_run,
                read=read,
                result=result,
            )
        finally:
            close_budget(budget, summary)
            if memory is not None and limiter is not None:
                memory.remember(limiter)


def _read(
    store: StagingStore,
    mapping: str,
    open_reader: Callable[[], StatusReader | None],
    dry_run: bool,
) -> ReadOutcome | None:
    """Open the status read and read the ERP's current statuses (None: the mapping has none)."""
    reader = open_reader()
    return None if reader is None else refresh_statuses(store, mapping, reader, dry_run=dry_run)


def _follow(
    on_progress: Callable[[RunSummary], None] | None, summary: RunSummary, result: StatusSyncResult
) -> None:
    """Hand ``on_progress`` a summary of the run whose counts are the pushes' as they go."""
    if on_progress is not None:
        view = RunSummary(summary.run_id, summary.mapping, STATUS_FLOW, False, summary.dry_run)
        view.counts = result.counts
        on_progress(view)


def _snapshot(counts: Counter[str]) -> dict[str, int]:
    """The counts so far, copied from the heartbeat's thread (retried if one was added)."""
    return RunSummary(None, "", "", False, False, counts=counts).counts_snapshot()


async def _wait_for(lock: NamedLock, stopper: StopOnRequest) -> bool:
    """Take ``lock``, waiting (polling: the holder may be another process) while it is held;
    False if a stop request came first."""
    if await asyncio.to_thread(lock.try_acquire):
        return True
    log.info("waiting for the status-sync that holds %s to finish", lock.name)
    while not await asyncio.to_thread(lock.try_acquire):
        if stopper.error is not None:
            return False
        await asyncio.sleep(LOCK_POLL_S)
    return True


def _status(stopped: RemoteError | None) -> RunStatus:
    """How a run that pushed ends: stopped by a request, by an error, or done."""
    if isinstance(stopped, RunCancelled):
        return "cancelled"
    return "failed" if stopped is not None else "succeeded"


def _planned(push: Push) -> dict[str, object]:
    """One push a dry run would make, as ``--dry-run`` lists it."""
    body = push.body.model_dump(mode="json", exclude_none=True)
    return {"uuid": push.candidate.uuid, **body}


def _close_run(store: StagingStore, summary: RunSummary, mapping: str, status: RunStatus) -> None:
    """Record the run's failures and close it. An interrupted run is closing on an error that is
    already propagating (a staging error, Ctrl-C): that one is reported, not this one's."""
    assert summary.run_id is not None
    try:
        if summary.failures:
            store.record_failures(summary.run_id, mapping, summary.failures)
        store.finish_run(
            summary.run_id,
            status=status,
            counts=dict(summary.counts),
            watermark=summary.watermark if status == "succeeded" else None,
            reason=summary.reason,
        )
    except StagingError as error:
        if status != "interrupted":
            raise
        log.warning("run %s stays 'running' in staging: %s", summary.run_id, error)
