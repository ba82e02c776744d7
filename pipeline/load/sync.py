"""One sync run end to end: extract → map → stage (change detection, claims) → post → record.

:class:`SyncJob` is what the CLI and the Prefect flows drive. Work is cut into batches (units of
``BATCH_SIZE`` invoices): each batch is claimed in staging in one transaction, posted concurrently
under the shared rate limit, and its outcomes committed together. Two batches are in flight at
once so the pipe never drains between them; mapping the next batch runs in a worker thread.

The watermark of an incremental run only advances over invoices that are finished (sent,
unchanged, rejected, or not mappable): it stops short of the first invoice that is still open
(retries exhausted, claimed by another worker, left pending by a fatal stop), so the next run
extracts that one again (:mod:`pipeline.runtime.watermarks`). What a run counts, and how the counts
add up: :mod:`pipeline.load.tally`.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from pipeline.appzen.client import AppZenClient, client_session
from pipeline.errors import BudgetSpent, RemoteError, RunCancelled
from pipeline.extract.base import SourceError
from pipeline.failures import InvoiceFacts, RowFailure
from pipeline.load.fit import fit_staging
from pipeline.load.ledger import LedgerTracker, failed_facts
from pipeline.load.poster import PostResult, SendItem, post_invoices
from pipeline.load.tally import count_decisions, count_extracted, count_posted, count_skipped
from pipeline.mapping.checks import sent_before
from pipeline.mapping.engine import MappedInvoice, RejectedInvoice, UnchangedSource
from pipeline.mapping.loader import load_mapping
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.stream import Sources, map_stream, open_sources, skipping_stream
from pipeline.redact import scrub
from pipeline.runtime import stop
from pipeline.runtime.budget import DailyBudget
from pipeline.runtime.clock import SYSTEM_CLOCK, Clock
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.ratelimit import AdaptiveRateLimiter, RateLimiter
from pipeline.runtime.retry import RetryPolicy
from pipeline.runtime.watermarks import Watermarks, bound_params
from pipeline.settings import Settings
from pipeline.staging import StageItem, StagingError, StagingStore
from pipeline.staging.budget import close_budget
from pipeline.staging.owners import DEFAULT_LEASE_S, Heartbeat, Owner
from pipeline.staging.ratememory import RateMemory
from pipeline.staging.records import Decision, RunStatus
from pipeline.summary import RunSummary

Flow = Literal["sync", "backfill", "retry_failed"]
Result = MappedInvoice | RejectedInvoice | UnchangedSource
Mapped = MappedInvoice | RejectedInvoice
BATCHES_IN_FLIGHT = 2
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """What one run does. ``since``/``until`` bound the extraction; with ``incremental`` and no
    ``since``, the stored watermark of the mapping's last successful incremental run is used."""

    mapping: Path
    flow: Flow = "sync"
    historical: bool = False
    incremental: bool = True
    since: str | None = None
    until: str | None = None
    force: bool = False
    retry_failed: bool = False
    only_keys: frozenset[str] | None = None
    dry_run: bool = False
    project_dir: Path | None = None
    lease_seconds: float = DEFAULT_LEASE_S
    """How long the run's claims stay its own without a heartbeat (renewed 4 times a lease while
    it lives); another process on the same machine takes them over at once if it dies."""
    label: str | None = None
    parent_run_id: int | None = None
    """The run this one was started under (a backfill's own run, for its partitions)."""


class SyncJob:
    """Runs one mapping once; see the module docstring."""

    def __init__(
        self,
        options: SyncOptions,
        settings: Settings,
        *,
        store: StagingStore,
        clock: Clock = SYSTEM_CLOCK,
        client: AppZenClient | None = None,
        limiter: RateLimiter | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.options = options
        self._limiter = limiter
        self._retry_policy = retry_policy
        self.settings = settings
        self.store = store
        self.clock = clock
        self._client = client
        self.spec: MappingSpec = load_mapping(options.mapping)
        self.summary = RunSummary(
            None, self.spec.name, options.flow, options.historical, options.dry_run
        )
        self.owner = Owner.of_this_process(options.label or options.flow)
        self._owner = self.owner.token
        self._holders: set[str] = set()
        self._heartbeat: Heartbeat | None = None
        self._watermarks = Watermarks()
        self._fatal: RemoteError | None = None
        self._source_error: SourceError | None = None
        self._cancelled: RunCancelled | None = None
        self._listening = stop.listening(self.cancel)
        self._sources: Sources | None = None
        self._budget: DailyBudget | None = None
        self._memory: RateMemory | None = None
        self.on_progress: Callable[[RunSummary], None] | None = None
        self._ledger = LedgerTracker(store, self.spec.name)

    # --- preparing ---------------------------------------------------------------------------
    def open_sources(self) -> Sources:
        """Open the mapping's source(s) and check every column it needs exists (before sending)."""
        erp_url = self.settings.erp_database_url
        return open_sources(
            self.spec,
            base_dir=self.options.project_dir,
            erp_url=erp_url.get_secret_value() if erp_url is not None else None,
            settings=self.settings,
        )

    def params(self) -> dict[str, object]:
        """The bind parameters: ``since`` (explicit, or the stored watermark) and ``until``.
        ``force`` without ``since`` reads everything (a full re-extract), not the watermark's."""
        since: object = self.options.since
        stored = self.options.incremental and self.options.flow == "sync" and not self.options.force
        if since is None and stored:
            since = self.store.last_watermark(self.spec.name, "sync")
        return bound_params(since, self.options.until, self.spec.watermark_format)

    def results(self, sources: Sources) -> Generator[Result, None, None]:
        """Every mapped or rejected invoice of the source, in source order; closing it closes
        the sources' cursors at once. Lazy: the watermark is read by the first ``next`` (in the
        mapping thread, off the event loop). Unless ``force``, an invoice whose source rows are
        those of its acknowledged payload is not mapped again (:class:`UnchangedSource`)."""
        if self.options.force:
            yield from map_stream(self.spec, sources, self.params())
            return
        yield from skipping_stream(
            self.spec,
            sources,
            self.params(),
            self._acked_sources,
            record=not self.options.dry_run,  # a dry run stages nothing
        )

    def _acked_sources(self, keys: list[str]) -> dict[str, str]:
        return self.store.acked_sources(self.spec.name, keys)

    # --- running -----------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        """Check the sources, open the run in staging and the AppZen connection pool. Opening
        and checking the sources (a connection, a first query, a header or an API call) and
        opening the run block: they run in a worker thread, so a slow source never stalls the
        other jobs (partitions) of this process's event loop. A source that cannot be opened
        (:class:`SourceError`: the ERP down, a bad query, a missing file) does not raise: the
        run is recorded ``failed`` with the reason (:meth:`source_failed`) and sends nothing."""
        self._started = time.monotonic()
        try:
            self._sources = await asyncio.to_thread(self.open_sources)
        except SourceError as error:
            self.source_failed(error)
        if not self.options.dry_run:
            run_id = await asyncio.to_thread(self._open_run)
            await asyncio.to_thread(self._ledger.load, run_id)
        self._client_cm = client_session(self.settings, self._client)
        self._session = await self._client_cm.__aenter__()
        self._budget = (
            None
            if self.options.dry_run
            else self.store.daily_budget(self.settings, self.options.flow)
        )
        if self._limiter is None and not self.options.dry_run:  # not shared: paced here
            self._memory = self.store.rate_memory(self.settings, "invoices")
        if self._memory is not None:
            self._limiter = self._memory.limiter(self.settings.appzen_rate_limit, self.clock)
        self.dispatcher = Dispatcher.from_settings(
            self.settings, self.clock, self._limiter, self._retry_policy, budget=self._budget
        )
        self._listening.__enter__()  # SIGTERM from here on: a clean stop (:meth:`cancel`)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the run: succeeded, failed (a fatal AppZen answer, the source failed) or
        interrupted (then its claims are freed at once, so the next run need not wait for the
        lease to expire), or cancelled (a stop request: :meth:`cancel`)."""
        self._listening.__exit__(None, None, None)
        await self._client_cm.__aexit__(exc_type, exc, tb)
        self.summary.duration_s = time.monotonic() - self._started
        if self._heartbeat is not None:
            await asyncio.to_thread(self._heartbeat.stop)
        close_budget(self._budget, self.summary)
        if self._memory is not None and isinstance(self._limiter, AdaptiveRateLimiter):
            self._memory.remember(self._limiter)
        if exc_type is None:
            gentle = isinstance(self._fatal, BudgetSpent) or self._source_error or self._cancelled
            if gentle:
                self._release_claims()  # every batch has finished: what was not sent is free
            self._finish(
                "cancelled" if self._cancelled else "failed" if self.stopped else "succeeded"
            )
            return
        self._release_claims()
        try:
            self._finish("interrupted")
        except StagingError as error:  # the error that stopped the run is the one to report
            log.warning("run %s stays 'running' in staging: %s", self.summary.run_id, error)

    @property
    def stopped(self) -> bool:
        """True once AppZen gave a fatal answer, the source failed or the run was cancelled:
        send nothing more."""
        return any(e is not None for e in (self._fatal, self._source_error, self._cancelled))

    def cancel(self, reason: str) -> None:
        """Stop cleanly on a stop request (SIGTERM, :mod:`pipeline.runtime.stop`): take no more
        work, let the requests already out finish (abandoned after
        :data:`~pipeline.runtime.stop.GRACE_S`), record their outcomes, free the claims, and
        close the run ``cancelled`` with ``reason``; the invoices not sent stay pending."""
        if self._cancelled is not None:
            return
        self._cancelled = RunCancelled(
            f"cancelled: {reason}; the requests already out were finished and recorded; "
            "nothing lost: the invoices not sent stay pending; rerun to send them"
        )
        self.summary.stop(self._cancelled)
        self.dispatcher.cancel(self._cancelled, stop.GRACE_S)

    def source_failed(self, error: SourceError) -> None:
        """The source cannot be read any further (the ERP down, a query error, an unreadable
        file): stop taking work; the run is recorded ``failed`` with the error's one line
        (secrets scrubbed) as its reason. What was read before it goes on as usual."""
        self._source_error = error
        self.summary.stop(error)
        self.summary.fatal = scrub(self.summary.fatal or "")

    def batches(self) -> Generator[list[Result], None, None]:
        """The source's invoices (mapped or rejected) in batches of ``BATCH_SIZE``; close it to
        close the source's cursor and connection (none when the source could not be opened)."""
        if self._sources is None:
            return _batched(_nothing(), self.settings.batch_size)
        return _batched(self.results(self._sources), self.settings.batch_size)

    async def process(self, batch: list[Result]) -> None:
        """One unit of work: stage and claim the batch, post what changed, record outcomes."""
        await self._process(batch, self._session, self.dispatcher)

    async def finish_up(self) -> None:
        """After the last batch: re-create invoices AppZen lost (status-sync 404); a run that
        re-read given keys (retry-failed) closes the open failures it no longer found as gone."""
        if self.options.flow == "sync" and self.options.only_keys is None and not self.stopped:
            await self._resend_recreates(self._session, self.dispatcher)
        keys = self.options.only_keys
        if keys is not None and not self.stopped and not self.options.dry_run:
            await asyncio.to_thread(self._ledger.close_unseen, keys)

    async def run(self) -> RunSummary:
        """Run to the end (or to a fatal error) and return the summary."""
        async with self:
            await drive(self)
        return self.summary

    async def _process(
        self, batch: list[Result], client: AppZenClient, dispatcher: Dispatcher
    ) -> None:
        if self.stopped:  # a fatal answer came while this batch was being mapped
            return
        scoped = self._in_scope(batch)
        skipped = [r for r in scoped if isinstance(r, UnchangedSource)]
        count_skipped(self.summary.counts, skipped)
        fresh = [r for r in scoped if not isinstance(r, UnchangedSource)]
        results = fit_staging(fresh, self.spec)
        if self.spec.checks.duplicate_number.level != "off":
            results = await asyncio.to_thread(self._sent_before, results)
        mapped = [r for r in results if isinstance(r, MappedInvoice)]
        failures = [f for r in results if isinstance(r, RejectedInvoice) for f in r.failures]
        count_extracted(self.summary.counts, results)
        items = [
            StageItem(
                m.key,
                m.payload_hash,
                m.erp_status,
                m.erp_error.model_dump(exclude_none=True) if m.erp_error else None,
                m.source_hash,
            )
            for m in mapped
        ]
        decisions = await asyncio.to_thread(self._decide, items)
        sends = [
            SendItem(
                m.key,
                m.payload,
                m.payload_hash,
                d.expect or "create",
                m.location,
                m.supplier_invoice,
                d.cause,
            )
            for m, d in zip(mapped, decisions, strict=True)
            if d.action == "send"
        ]
        count_decisions(self.summary.counts, decisions)
        self._holders.update(d.holder for d in decisions if d.action == "busy" and d.holder)
        warned = [  # check warnings travel with the invoices that are sent (not the unchanged)
            m.warnings for m, d in zip(mapped, decisions, strict=True) if d.action == "send"
        ]
        self.summary.counts["check_warnings"] += sum(1 for w in warned if w)
        failures += [warning for warnings in warned for warning in warnings]
        unchanged = {d.invoice_id for d in decisions if d.action == "unchanged"}
        unchanged.update(r.key for r in skipped)
        if self._ledger.any_live and unchanged and not self.options.dry_run:
            await asyncio.to_thread(self._ledger.close, unchanged, "delivered")
        sent_failures = await self._send(sends, client, dispatcher)
        failures += sent_failures
        exhausted = {f.source_key for f in sent_failures if f.stage == "retries_exhausted"}
        self._track_watermarks(mapped, decisions, sends, exhausted, skipped)
        await self._report(failures, failed_facts(results, sent_failures))
        if self.on_progress is not None:
            self.on_progress(self.summary)

    async def _send(
        self, sends: list[SendItem], client: AppZenClient, dispatcher: Dispatcher
    ) -> list[RowFailure]:
        """Post claimed invoices and commit their outcomes; the failures to report."""
        if not sends or self.options.dry_run:
            return []
        started = time.monotonic()
        posted = await post_invoices(client, dispatcher, sends, historical=self.options.historical)
        self.summary.posted(started, time.monotonic())  # batches overlap: a window
        await asyncio.to_thread(self._record, posted)
        count_posted(self.summary.counts, len(sends), posted.outcomes, posted.retries)
        return posted.failures

    async def _report(
        self, failures: list[RowFailure], facts: dict[str, InvoiceFacts] | None = None
    ) -> None:
        if failures and not self.options.dry_run:
            await asyncio.to_thread(self._record_failures, failures, facts or {})
        self.summary.add_failures(failures)  # the first ones; staging keeps them all

    async def _resend_recreates(self, client: AppZenClient, dispatcher: Dispatcher) -> None:
        """Re-create, from the last acknowledged payload, invoices AppZen said it no longer knows
        (status-sync 404) and that this run's extraction did not already resend."""
        after: str | None = None
        while self._fatal is None:
            rows = await asyncio.to_thread(
                self.store.invoices_in_state,
                self.spec.name,
                "recreate",
                self.settings.batch_size,
                after,
            )
            if not rows:
                return
            after = rows[-1].invoice_id
            rows = [r for r in rows if r.acked_payload is not None and r.acked_hash is not None]
            items = [
                StageItem(r.invoice_id, r.acked_hash or "", r.erp_status, r.erp_error) for r in rows
            ]
            decisions = await asyncio.to_thread(self._decide, items)
            sends = [
                SendItem(
                    r.invoice_id,
                    r.acked_payload or b"",
                    r.acked_hash or "",
                    d.expect or "create",
                    "staging: last acknowledged payload",
                    cause=d.cause,
                )
                for r, d in zip(rows, decisions, strict=True)
                if d.action == "send"
            ]
            self.summary.counts["recreate_resent"] += len(sends)
            await self._report(await self._send(sends, client, dispatcher))

    def _sent_before(self, batch: list[Mapped]) -> list[Mapped]:
        """The ``duplicate_number`` check against staging history: an invoice whose supplier
        sent the same invoice number before under another key is warned (or refused)."""
        keys = sorted(
            {
                r.supplier_invoice
                for r in batch
                if isinstance(r, MappedInvoice) and r.supplier_invoice
            }
        )
        sent = self.store.supplier_invoices(self.spec.name, keys) if keys else {}
        if not sent:
            return batch
        level = self.spec.checks.duplicate_number.level
        out: list[Mapped] = []
        for result in batch:
            earlier = (
                []
                if not isinstance(result, MappedInvoice)
                else sent.get(result.supplier_invoice or "", [])
            )
            others = [key for key in earlier if key != result.key]
            said = any(w.rule == "check:duplicate_number" for w in getattr(result, "warnings", ()))
            if not others or said or not isinstance(result, MappedInvoice):
                out.append(result)
                continue
            failure = sent_before(result, others[0], error=level == "error")
            if level == "error":
                out.append(RejectedInvoice(result.key, result.location, (failure,)))
            else:
                out.append(dataclasses.replace(result, warnings=(*result.warnings, failure)))
        return out

    def _in_scope(self, batch: list[Result]) -> list[Result]:
        """The batch's invoices in ``only_keys`` (all without it): the others are not counted,
        staged nor reported by a run limited to some keys (retry-failed)."""
        keys = self.options.only_keys
        if keys is None:
            return batch
        inside = [r for r in batch if r.key in keys]
        self._ledger.saw(r.key for r in inside if r.key is not None)
        return inside

    def _decide(self, items: Sequence[StageItem]) -> list[Decision]:
        if self.options.dry_run:
            return self.store.plan_batch(
                self.spec.name,
                items,
                force=self.options.force,
                retry_failed=self.options.retry_failed,
            )
        assert self.summary.run_id is not None
        return self.store.claim_batch(
            self.spec.name,
            items,
            owner=self._owner,
            lease_seconds=self.options.lease_seconds,
            run_id=self.summary.run_id,
            force=self.options.force,
            retry_failed=self.options.retry_failed,
        )

    def _record(self, posted: PostResult) -> None:
        assert self.summary.run_id is not None
        self.store.record_outcomes(
            self.summary.run_id, self.spec.name, posted.outcomes, owner=self._owner
        )
        acked = {outcome.invoice_id for outcome in posted.outcomes if outcome.kind == "acked"}
        self._ledger.close(acked, "delivered")  # after the commit: a crash between leaves the
        # entry open, and the next run finds the invoice unchanged and closes it then
        if posted.fatal is not None:
            if not isinstance(
                posted.fatal, BudgetSpent | RunCancelled
            ):  # the other batch's are out
                self.store.release_claims(self._owner, self.spec.name)
            self._fatal = posted.fatal
            if not isinstance(posted.fatal, RunCancelled):  # else already the summary's
                self.summary.stop(posted.fatal)

    def _release_claims(self) -> None:
        if self.options.dry_run or self.summary.run_id is None:
            return
        try:
            self.store.release_claims(self._owner, self.spec.name)
        except StagingError as error:
            log.warning(
                "run %s: its claims stay until their lease expires (%s s): %s",
                self.summary.run_id,
                self.options.lease_seconds,
                error,
            )

    def _record_failures(self, failures: list[RowFailure], facts: dict[str, InvoiceFacts]) -> None:
        assert self.summary.run_id is not None
        self.store.record_failures(self.summary.run_id, self.spec.name, failures, facts)

    def _track_watermarks(
        self,
        mapped: list[MappedInvoice],
        decisions: list[Decision],
        sends: list[SendItem],
        exhausted: set[str | None],
        skipped: list[UnchangedSource],
    ) -> None:
        if self.spec.watermark_column is None or self.options.dry_run:
            return
        open_keys = {d.invoice_id for d in decisions if d.action == "busy"} | exhausted
        if self._fatal is not None:
            open_keys |= {s.invoice_id for s in sends}
        marked = [m for m in mapped if m.watermark is not None]
        self._watermarks.add(
            done=[m.watermark for m in marked if m.key not in open_keys]
            + [r.watermark for r in skipped if r.watermark is not None],
            still_open=[m.watermark for m in marked if m.key in open_keys],
        )

    def _open_run(self) -> int:
        """Mark crashed the runs whose owner is gone (their claims become free), record this
        run with its owner, and start renewing its lease; the run's id."""
        run_id, self._heartbeat = self.store.start_owned_run(
            self.options.flow,
            self.spec.name,
            self._run_parameters(),
            self.options.historical,
            owner=self.owner,
            counts=self.summary.counts_snapshot,
            lease_seconds=self.options.lease_seconds,
            parent_run_id=self.options.parent_run_id,
        )
        self.summary.run_id = run_id
        return run_id

    def _finish(self, status: Literal["succeeded", "failed", "interrupted", "cancelled"]) -> None:
        final: RunStatus = status
        if status == "succeeded" and self.summary.counts["busy"]:
            final = "partial"
            self.summary.reason = (
                f"{self.summary.counts['busy']} invoices skipped: held by "
                f"{', '.join(sorted(self._holders))}, still running; the next run sends them"
            )
        if final in ("failed", "cancelled") and self.summary.reason is None:
            self.summary.reason = self.summary.fatal  # the one line that stopped it
        self.summary.status = final
        if self.options.dry_run or self.summary.run_id is None:
            return
        incremental = self.options.flow == "sync" and final in ("succeeded", "partial")
        watermark = self._watermarks.value if incremental else None
        self.summary.watermark = watermark
        self.store.finish_run(
            self.summary.run_id,
            status=final,
            counts=dict(self.summary.counts),
            watermark=watermark,
            reason=self.summary.reason,
        )

    # --- plumbing ----------------------------------------------------------------------------
    def _run_parameters(self) -> dict[str, object]:
        o = self.options
        return {
            "mapping": str(o.mapping),
            "since": o.since,
            "until": o.until,
            "force": o.force,
            "retry_failed": o.retry_failed,
            "only_keys": len(o.only_keys) if o.only_keys is not None else None,
        }


async def drive(
    job: SyncJob, process: Callable[[list[Result]], Awaitable[None]] | None = None
) -> None:
    """Feed ``job``'s batches to ``process`` (default ``job.process``), two in flight at once;
    mapping the next batch runs in a worker thread while the current ones post."""
    run_batch = process or job.process
    batches = job.batches()
    inflight: set[asyncio.Task[None]] = set()
    # One thread maps every batch: memory stays flat (a pool's threads would each keep a malloc
    # arena as large as a chunk's working set).
    mapper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="appzen-mapping")
    loop = asyncio.get_running_loop()
    try:
        while not job.stopped:
            pull = functools.partial(contextvars.copy_context().run, next, batches, None)
            try:
                batch = await loop.run_in_executor(mapper, pull)
            except SourceError as error:  # the batches read before it finish and are recorded
                await asyncio.gather(*inflight)
                inflight.clear()
                job.source_failed(error)
                break
            if batch is None:
                break
            inflight.add(asyncio.ensure_future(run_batch(batch)))
            if len(inflight) >= BATCHES_IN_FLIGHT:
                done, inflight = await asyncio.wait(inflight, return_when="FIRST_COMPLETED")
                for task in done:
                    task.result()
        if inflight:
            await asyncio.gather(*inflight)
            inflight.clear()
    finally:
        for task in inflight:
            task.cancel()
        await asyncio.gather(*inflight, return_exceptions=True)
        if inspect.getgeneratorstate(batches) != inspect.GEN_RUNNING:  # else a thread reads it
            batches.close()  # now, not in some later garbage collection
        mapper.shutdown(wait=False)
    await job.finish_up()


def _nothing() -> Generator[Result, None, None]:
    yield from ()


def _batched(
    results: Generator[Result, None, None], size: int
) -> Generator[list[Result], None, None]:
    """``results`` in lists of ``size``; closing this generator closes ``results``. When the
    source fails part way, the invoices read before the failure come first as a short batch,
    then the :class:`SourceError`."""
    batch: list[Result] = []
    try:
        for result in results:
            batch.append(result)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch
    except SourceError:
        if batch:
            yield batch
        raise
    finally:
        results.close()
