"""The poster: sends claimed invoices to AppZen and turns each answer into a staging outcome.

An acknowledged send becomes an ``acked`` outcome (uuid, CREATED/UPDATED); a 400 a ``rejected``
outcome plus a RowFailure (stage ``appzen``); an exhausted retry budget a ``retryable_failed``
outcome plus a RowFailure (stage ``retries_exhausted``). Nothing else is ever recorded as sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.appzen.client import Acknowledgement, AppZenClient
from pipeline.errors import RemoteError
from pipeline.failures import RowFailure
from pipeline.runtime.dispatch import CallResult, Dispatcher, describe
from pipeline.runtime.retry import RetriesExhausted
from pipeline.staging.records import Expect, ResendCause, SendOutcome


@dataclass(frozen=True, slots=True)
class SendItem:
    """One invoice claimed for sending: its exact payload bytes and what staging expects."""

    invoice_id: str
    payload: bytes
    payload_hash: str
    expect: Expect
    location: str | None = None
    supplier_invoice: str | None = None
    """Supplier and normalised supplier invoice number, stored with the ack (duplicate checks)."""
    cause: ResendCause | None = None
    """Why AppZen may already hold it (staging's claim decision)."""


@dataclass(frozen=True, slots=True)
class PostResult:
    """Outcomes to record in staging, failures to report, and the fatal error if the run stops."""

    outcomes: list[SendOutcome]
    failures: list[RowFailure]
    fatal: RemoteError | None
    retries: int


async def post_invoices(
    client: AppZenClient,
    dispatcher: Dispatcher,
    items: Sequence[SendItem],
    *,
    historical: bool,
) -> PostResult:
    """POST every item (concurrently, rate-limited, with retries) and classify the answers."""

    async def send(item: SendItem) -> Acknowledgement:
        return await client.create_or_update(item.payload, historical=historical)

    report = await dispatcher.run(items, send)
    outcomes: list[SendOutcome] = []
    failures: list[RowFailure] = []
    for result in report.results:
        outcome, failure = _classify(result, historical)
        outcomes.append(outcome)
        if failure is not None:
            failures.append(failure)
    return PostResult(outcomes, failures, report.fatal, report.retries)


def _classify(
    result: CallResult[SendItem, Acknowledgement], historical: bool
) -> tuple[SendOutcome, RowFailure | None]:
    item, ack = result.item, result.value
    common = {
        "invoice_id": item.invoice_id,
        "payload_hash": item.payload_hash,
        "payload": item.payload,
        "expect": item.expect,
        "attempts": result.attempts,
        "historical": historical,
        "supplier_invoice": item.supplier_invoice,
        "cause": _cause(item, result.in_doubt),
    }
    if ack is not None:
        acked = SendOutcome(
            kind="acked",
            uuid=ack.uuid,
            appzen_status=ack.status,
            http_status=ack.http_status,
            correlation_id=ack.correlation_id,
            **common,  # type: ignore[arg-type]
        )
        return acked, None
    assert result.error is not None
    error = describe(result.error)
    exhausted = isinstance(result.error, RetriesExhausted)
    outcome = SendOutcome(
        kind="retryable_failed" if exhausted else "rejected",
        http_status=error.status,
        error_code=error.error_code,
        error_message=error.message,
        correlation_id=error.correlation_id,
        **common,  # type: ignore[arg-type]
    )
    failure = RowFailure(
        source_key=item.invoice_id,
        source_location=item.location,
        stage="retries_exhausted" if exhausted else "appzen",
        rule=_rule(result.error),
        message=str(result.error) if exhausted else error.message,
        hint=_hint(result.error),
        http_status=error.status,
        error_code=error.error_code,
        correlation_id=error.correlation_id,
        attempts=result.attempts,
    )
    return outcome, failure


def _cause(item: SendItem, in_doubt: int) -> ResendCause | None:
    """Why AppZen may have held the invoice before the attempt that got through: a dead run's
    send comes first (it was out before this run began), then this run's own unclear attempts."""
    if item.cause == "crash" or not in_doubt:
        return item.cause
    return "lost_answer"


def _rule(error: RemoteError | RetriesExhausted) -> str:
    if isinstance(error, RetriesExhausted):
        return f"retries_exhausted:{type(error.last_error).__name__}"
    return f"appzen_{error.status or 'error'}"


def _hint(error: RemoteError | RetriesExhausted) -> str:
    if isinstance(error, RetriesExhausted):
        return "transient AppZen failure: the next run (or `appzen-etl retry-failed`) resends it"
    return "fix the source data AppZen names, then run `appzen-etl retry-failed`"
