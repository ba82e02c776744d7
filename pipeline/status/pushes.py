"""The pushes of one status-sync pass: the body of each (:func:`status_body`), which candidates
need one (:func:`plan`), and how their outcomes are recorded in staging and counted
(:func:`record`): pushed, refused, 404 (re-create), or in doubt (a lost answer)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from pipeline.appzen.client import Reply
from pipeline.appzen.errors import UnknownInvoice
from pipeline.appzen.models import StatusSyncRequest
from pipeline.errors import RemoteError
from pipeline.failures import RowFailure
from pipeline.runtime.dispatch import CallResult, describe
from pipeline.runtime.retry import RetriesExhausted
from pipeline.staging import StagingStore
from pipeline.staging.records import PushRecord, StatusCandidate


@dataclass(slots=True)
class StatusSyncResult:
    """Counts (pushed, pushed_error, would_push, recreate, failed_status_sync, skipped_no_status,
    requests, retries, repushed_after_crash, repushed_after_lost_answer), the failed rows, and
    for a dry run the pushes it would make."""

    counts: Counter[str]
    failures: list[RowFailure]
    fatal: RemoteError | None = None
    planned: list[Push] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Push:
    """One status-sync call to make: the staged invoice and the body to send."""

    candidate: StatusCandidate
    body: StatusSyncRequest


def status_body(candidate: StatusCandidate, now: datetime) -> StatusSyncRequest | None:
    """The status-sync body for a candidate; ``None`` when the ERP has no status to report.

    Raises :class:`~pydantic.ValidationError` (paths such as ``error_data.message``) when the
    staged ERP error does not make a valid body."""
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    error = candidate.erp_error or {}
    if error.get("message"):
        body = {
            "appzen_invoice_state": "ERROR",
            "invoice_id": candidate.invoice_id,
            "invoice_status": candidate.erp_status,
            "timestamp": stamp,
            "error_data": error,
        }
        return StatusSyncRequest.model_validate({k: v for k, v in body.items() if v is not None})
    if not candidate.erp_status:
        return None
    return StatusSyncRequest(
        appzen_invoice_state="CREATED",
        invoice_id=candidate.invoice_id,
        invoice_status=candidate.erp_status,
        timestamp=stamp,
    )


def plan(
    candidates: list[StatusCandidate], moment: datetime, result: StatusSyncResult
) -> tuple[list[Push], list[StatusCandidate]]:
    """The pushes to make and the candidates with nothing to report; a body that cannot be
    built (the ERP error columns hold something that is not text) is a failed row."""
    todo: list[Push] = []
    idle: list[StatusCandidate] = []
    for candidate in candidates:
        try:
            body = status_body(candidate, moment)
        except ValidationError as error:
            result.counts["failed_status_sync"] += 1
            result.failures.append(_invalid_body(candidate, error))
            continue
        if body is None:
            idle.append(candidate)
        else:
            todo.append(Push(candidate, body))
    if idle:
        result.counts["skipped_no_status"] += len(idle)
    return todo, idle


def handled(candidate: StatusCandidate) -> PushRecord:
    return PushRecord(candidate.invoice_id, candidate.erp_status, candidate.erp_error)


def _invalid_body(candidate: StatusCandidate, error: ValidationError) -> RowFailure:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
        for item in error.errors(include_url=False, include_input=False)
    )
    return RowFailure(
        source_key=candidate.invoice_id,
        source_location=f"uuid {candidate.uuid}",
        stage="status_sync",
        rule="status_sync_body",
        message=f"cannot build the status-sync body: {problems}",
        hint="the ERP error columns (message, status, exception) must be text; fix the mapping's "
        "status.error columns, then sync and status-sync again",
    )


def record(
    store: StagingStore,
    mapping: str,
    results: list[CallResult[Push, Reply]],
    moment: datetime,
    result: StatusSyncResult,
    *,
    unsent: list[str],
) -> None:
    pushed: list[PushRecord] = []
    refused: list[str] = list(unsent)
    for call in results:
        candidate = call.item.candidate
        result.counts["requests"] += call.attempts
        if call.error is None:
            pushed.append(
                PushRecord(candidate.invoice_id, candidate.erp_status, candidate.erp_error)
            )
            error = bool((candidate.erp_error or {}).get("message"))
            result.counts["pushed_error" if error else "pushed"] += 1
            _count(result.counts, "repushed_after_crash", candidate.pushed_in_doubt)
            _count(result.counts, "repushed_after_lost_answer", call.in_doubt)
            continue
        # The first unclear attempt stays in doubt (the next push counts it); any more are extra.
        _count(result.counts, "repushed_after_lost_answer", call.in_doubt - 1)
        if not (call.in_doubt or candidate.pushed_in_doubt):
            refused.append(candidate.invoice_id)  # AppZen surely did not take this one
        if isinstance(call.error, UnknownInvoice):
            store.mark_recreate(mapping, candidate.invoice_id, "status-sync: AppZen answered 404")
            result.counts["recreate"] += 1
        else:
            result.counts["failed_status_sync"] += 1
        result.failures.append(_failure(call))
    store.record_pushes(mapping, pushed, moment)
    store.clear_pushes_in_doubt(mapping, refused)


def _count(counts: Counter[str], key: str, n: int) -> None:
    """Add ``n`` to a count that only appears when something happened."""
    if n > 0:
        counts[key] += n


def _failure(call: CallResult[Push, Reply]) -> RowFailure:
    assert call.error is not None
    error = describe(call.error)
    unknown = isinstance(call.error, UnknownInvoice)
    exhausted = isinstance(call.error, RetriesExhausted)
    hint = (
        "AppZen does not know this uuid: the next sync re-creates the invoice"
        if unknown
        else "retried on the next status-sync"
        if exhausted
        else "AppZen refused the status body; check the ERP status columns"
    )
    return RowFailure(
        source_key=call.item.candidate.invoice_id,
        source_location=f"uuid {call.item.candidate.uuid}",
        stage="retries_exhausted" if exhausted else "status_sync",
        rule="appzen_404_unknown_uuid" if unknown else f"status_sync_{error.status or 'error'}",
        message=str(call.error) if exhausted else error.message,
        hint=hint,
        http_status=error.status,
        error_code=error.error_code,
        correlation_id=error.correlation_id,
        attempts=call.attempts,
    )
