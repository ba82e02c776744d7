"""Polling AppZen for audit outcomes: ``POST /invoice/search`` over the window of last AppZen
update time, then ``GET /invoice/{uuid}/audit-results`` for each invoice this staging sent.

The window runs from the last successful poll's end (minus ``overlap_minutes``, for late updates
and clock skew; the first poll looks back ``lookback_hours``) to now, cut into slices of at most
``slice_hours``. The end it reached is the next watermark: it stops at the start of the first
slice whose search, or one of whose audits, failed for a transient cause, so nothing is skipped.
Calls go through the shared :class:`~pipeline.runtime.dispatch.Dispatcher` (rate limit, retries).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipeline.appzen.client import AppZenClient
from pipeline.appzen.models import AuditSummary, SearchHit, SearchRequest
from pipeline.errors import RemoteError
from pipeline.failures import RowFailure
from pipeline.runtime.dispatch import CallResult, Dispatcher, describe
from pipeline.runtime.retry import RetriesExhausted
from pipeline.staging.audit import AuditOutcome, AuditStore
from pipeline.writeback.config import PollSpec
from pipeline.writeback.outcomes import from_audit, parse_time

DECIDED = frozenset({"PROCESSED", "REJECTED", None})
"""Search statuses worth reading the audit of (``None``: AppZen did not say)."""


@dataclass(slots=True)
class PollResult:
    """Outcomes by mapping, failures by mapping (``None``: a search), counts, how far it got."""

    outcomes: dict[str, list[AuditOutcome]] = field(default_factory=dict)
    failures: dict[str | None, list[RowFailure]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    reached: datetime | None = None
    fatal: RemoteError | None = None


@dataclass(frozen=True, slots=True)
class Window:
    """One slice of last-AppZen-update time."""

    start: datetime
    end: datetime

    def request(self, status: str | None) -> SearchRequest:
        """The search body for this slice (and status, if any)."""
        return SearchRequest.model_validate(
            {
                "from-last-appzen-update-time": _stamp(self.start),
                "to-last-appzen-update-time": _stamp(self.end),
                **({"appzen-invoice-status": status} if status else {}),
            }
        )


def windows(spec: PollSpec, last_end: datetime | None, now: datetime) -> list[Window]:
    """The slices to search: from the last end (minus the overlap) or the lookback, to now."""
    start = (
        now - timedelta(hours=spec.lookback_hours)
        if last_end is None
        else last_end - timedelta(minutes=spec.overlap_minutes)
    )
    step = timedelta(hours=spec.slice_hours)
    found: list[Window] = []
    while start < now:
        found.append(Window(start, min(start + step, now)))
        start += step
    return found


class Poller:
    """One poll: search each slice, read the audits of this staging's invoices."""

    def __init__(
        self,
        client: AppZenClient,
        dispatcher: Dispatcher,
        audit: AuditStore,
        spec: PollSpec,
        mappings: set[str],
    ) -> None:
        self.client, self.dispatcher, self.audit = client, dispatcher, audit
        self.spec, self.mappings = spec, mappings
        self.result = PollResult()

    async def run(self, last_end: datetime | None, now: datetime) -> PollResult:
        """Poll every slice up to ``now``; see the module docstring."""
        self.result.reached = last_end
        for window in windows(self.spec, last_end, now):
            complete = await self._slice(window)
            if self.result.fatal is not None or not complete:
                break
            self.result.reached = window.end
        return self.result

    async def _slice(self, window: Window) -> bool:
        """One slice; ``False`` when something transient failed (the watermark stops here)."""
        result = self.result
        statuses: list[str | None] = [*self.spec.statuses] or [None]
        requests = [window.request(status) for status in statuses]
        searched = await self.dispatcher.run(requests, self.client.search_invoices)
        result.fatal = searched.fatal
        hits: dict[str, SearchHit] = {}
        complete = searched.fatal is None and len(searched.results) == len(requests)
        for call in searched.results:
            result.counts["requests"] += call.attempts
            if call.error is not None:
                result.failures.setdefault(None, []).append(_search_failure(call, window))
                result.counts["failed_audit"] += 1
                complete = False
            for hit in call.value or []:
                hits[hit.appzen_uuid] = hit
        result.counts["search_hits"] += len(hits)
        if result.fatal is not None:
            return False
        return await self._audits(hits) and complete

    async def _audits(self, hits: dict[str, SearchHit]) -> bool:
        result = self.result
        undecided = [u for u, h in hits.items() if h.appzen_invoice_status not in DECIDED]
        result.counts["audit_pending"] += len(undecided)
        hits = {u: h for u, h in hits.items() if h.appzen_invoice_status in DECIDED}
        places = await asyncio.to_thread(self.audit.invoices_by_uuid, list(hits))
        ours = [
            (hits[uuid], mapping, key)
            for uuid, found in places.items()
            for mapping, key in found
            if mapping in self.mappings
        ]
        result.counts["not_ours"] += len(hits) - len({hit.appzen_uuid for hit, _, _ in ours})
        report = await self.dispatcher.run(
            ours, lambda item: self.client.audit_results(item[0].appzen_uuid)
        )
        result.fatal = report.fatal
        complete = report.fatal is None and len(report.results) == len(ours)
        for call in report.results:
            result.counts["requests"] += call.attempts
            if not self._record(call):
                complete = complete and not isinstance(call.error, RetriesExhausted)
        return complete

    def _record(self, call: CallResult[tuple[SearchHit, str, str], AuditSummary]) -> bool:
        """Keep one audit's outcome (or its failure); ``False`` when it failed."""
        hit, mapping, key = call.item
        if call.error is not None:
            self.result.failures.setdefault(mapping, []).append(_audit_failure(call))
            self.result.counts["failed_audit"] += 1
            return False
        assert call.value is not None
        outcome = from_audit(key, hit, call.value)
        if outcome is None:
            self.result.counts["audit_pending"] += 1
            return True
        self.result.outcomes.setdefault(mapping, []).append(outcome)
        self.result.counts[f"audit_{outcome.outcome.lower()}"] += 1
        return True


def _search_failure(call: CallResult[SearchRequest, list[SearchHit]], window: Window) -> RowFailure:
    assert call.error is not None
    error = describe(call.error)
    return RowFailure(
        source_key=None,
        source_location=f"AppZen search {_stamp(window.start)}..{_stamp(window.end)}",
        stage="audit",
        rule="appzen_search",
        message=str(call.error),
        hint="the next write-back searches this window again",
        http_status=error.status,
        error_code=error.error_code,
        correlation_id=error.correlation_id,
        attempts=call.attempts,
    )


def _audit_failure(call: CallResult[tuple[SearchHit, str, str], AuditSummary]) -> RowFailure:
    assert call.error is not None
    error = describe(call.error)
    hit, _, key = call.item
    exhausted = isinstance(call.error, RetriesExhausted)
    return RowFailure(
        source_key=key,
        source_location=f"uuid {hit.appzen_uuid}",
        stage="audit",
        rule="retries_exhausted:audit_results" if exhausted else f"audit_results_{error.status}",
        message=str(call.error) if exhausted else error.message,
        hint="the next write-back reads it again"
        if exhausted
        else "AppZen has no audit results for this uuid yet",
        http_status=error.status,
        error_code=error.error_code,
        correlation_id=error.correlation_id,
        attempts=call.attempts,
    )


def _stamp(moment: datetime) -> str:
    """``2021-06-16T18:53:38.603Z``, AppZen's own form (milliseconds, UTC)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_watermark(text: str | None) -> datetime | None:
    """A stored poll watermark (ISO-8601) as an aware datetime."""
    return parse_time(text)
