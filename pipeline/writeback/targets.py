"""Telling the ERP-side systems: the merchant note (AppZen uuid and state) and the CRM.COM
rejection, a page of candidates at a time, through the shared Dispatcher.

Each call ends ``done`` (recorded, not repeated until the state to tell changes), ``refused`` (a
row failure the system decided, such as a CRM invoice no longer DRAFT or a merchant invoice that
does not exist: recorded and reported, not retried until the state changes), or as a failure
only (transient, or a problem a person fixes in the configuration): retried on the next run.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.connectors.crm import CrmClient, CrmInvoice
from pipeline.connectors.errors import MerchantRowError, NotDraft
from pipeline.connectors.merchant import MerchantClient, MerchantReply, Record, with_appzen_note
from pipeline.errors import RemoteError
from pipeline.failures import RowFailure, Stage
from pipeline.runtime.dispatch import CallResult, Dispatcher, describe
from pipeline.runtime.retry import RetriesExhausted
from pipeline.staging.audit import AuditStore, NoteCandidate, RejectCandidate, Writeback
from pipeline.writeback.config import CrmSpec

PAGE = 500
REFUSED_MERCHANT = frozenset({"910", "913"})
"""Merchant message IDs that refuse this invoice for this state (not retried until it changes)."""


@dataclass(slots=True)
class TargetResult:
    """What one system was told: counts, failed rows, and the fatal answer that stopped it."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[RowFailure] = field(default_factory=list)
    fatal: RemoteError | None = None


@dataclass(frozen=True, slots=True)
class NoteUpdate:
    """One merchant invoice to update: the candidate, its merchant id and the new note."""

    candidate: NoteCandidate
    merchant_id: int
    note: str


# --- merchant notes ------------------------------------------------------------------------
class NoteWriter:
    """Writes ``[AppZen <uuid> <STATE>]`` into the notes of one mapping's merchant invoices."""

    def __init__(
        self,
        audit: AuditStore,
        client: MerchantClient,
        dispatcher: Dispatcher,
        mapping: str,
        lookup_batch: int,
    ) -> None:
        self.audit, self.client, self.dispatcher = audit, client, dispatcher
        self.mapping, self.lookup_batch = mapping, lookup_batch
        self.result = TargetResult()

    async def run(self, page: int = PAGE) -> TargetResult:
        """Every candidate of the mapping, a page at a time, until done or stopped."""
        after: str | None = None
        while self.result.fatal is None:
            found = await asyncio.to_thread(self.audit.note_candidates, self.mapping, page, after)
            if not found:
                break
            after = found[-1].invoice_id
            records = await self._page(found)
            await asyncio.to_thread(self.audit.record_writebacks, self.mapping, records)
        return self.result

    async def _page(self, candidates: list[NoteCandidate]) -> list[Writeback]:
        """Read the current notes, write the new ones; the write-backs to record."""
        records: list[Writeback] = []
        ids = {c.invoice_id: int(c.invoice_id) for c in candidates if c.invoice_id.isdigit()}
        for candidate in candidates:
            if candidate.invoice_id not in ids:
                message = f"invoice_id {candidate.invoice_id!r} is not a merchant invoice id"
                self._refuse(candidate, "merchant_id", message, "map the merchant `id`", records)
        notes = await self._current_notes([c for c in candidates if c.invoice_id in ids], ids)
        updates = [
            NoteUpdate(candidate, ids[candidate.invoice_id], note)
            for candidate in candidates
            if candidate.invoice_id in notes
            and (note := self._new_note(candidate, notes[candidate.invoice_id], records))
        ]
        report = await self.dispatcher.run(
            updates, lambda u: self.client.update_note(u.merchant_id, u.note)
        )
        self._stop(report.fatal, report.retries)
        for call in report.results:
            self._settle(call, records)
        return records

    def _new_note(
        self, candidate: NoteCandidate, current: Record | None, records: list[Writeback]
    ) -> str | None:
        """The note to write, or ``None`` (the invoice is gone, or its note already says it)."""
        if current is None:
            message = f"the merchant platform has no invoice {candidate.invoice_id}"
            self._refuse(candidate, "merchant_not_found", message, _GONE, records)
            return None
        note = with_appzen_note(
            current.get("note"), candidate.uuid, candidate.state, candidate.reason
        )
        if note != current.get("note"):
            return note
        records.append(_done(candidate, "unchanged"))
        self.result.counts["merchant_unchanged"] += 1
        return None

    async def _current_notes(
        self, candidates: list[NoteCandidate], ids: dict[str, int]
    ) -> dict[str, Record | None]:
        """``{invoice_id: invoice or None when the platform has none}``; ids whose lookup
        failed are left out (reported, retried next run)."""
        batches = [
            candidates[i : i + self.lookup_batch]
            for i in range(0, len(candidates), self.lookup_batch)
        ]
        report = await self.dispatcher.run(
            batches,
            lambda batch: self.client.list_invoices(invoice_ids=[ids[c.invoice_id] for c in batch]),
        )
        self._stop(report.fatal, report.retries)
        found: dict[str, Record | None] = {}
        for call in report.results:
            self.result.counts["requests"] += call.attempts
            if call.error is not None:
                for candidate in call.item:
                    self._fail(candidate, call.error, call.attempts, "lookup")
                continue
            by_id = {str(invoice.get("id")): invoice for invoice in call.value or []}
            for candidate in call.item:
                found[candidate.invoice_id] = by_id.get(candidate.invoice_id)
        return found

    def _settle(
        self, call: CallResult[NoteUpdate, MerchantReply], records: list[Writeback]
    ) -> None:
        candidate = call.item.candidate
        self.result.counts["requests"] += call.attempts
        if call.error is None:
            records.append(_done(candidate, "206", call.attempts))
            self.result.counts["merchant_noted"] += 1
            return
        error = describe(call.error)
        if isinstance(call.error, MerchantRowError) and error.error_code in REFUSED_MERCHANT:
            records.append(_refused(candidate, error.error_code, error.message, call.attempts))
        self._fail(candidate, call.error, call.attempts, "update")

    def _refuse(
        self, candidate: NoteCandidate, rule: str, message: str, hint: str, into: list[Writeback]
    ) -> None:
        into.append(_refused(candidate, rule, message))
        self.result.failures.append(
            _failure(
                "merchant", candidate.invoice_id, candidate.uuid, rule, message=message, hint=hint
            )
        )
        self.result.counts["failed_merchant"] += 1

    def _fail(
        self,
        candidate: NoteCandidate,
        error: RemoteError | RetriesExhausted,
        attempts: int,
        what: str,
    ) -> None:
        self.result.failures.append(
            _call_failure(
                "merchant",
                candidate.invoice_id,
                candidate.uuid,
                error,
                attempts=attempts,
                what=what,
            )
        )
        self.result.counts["failed_merchant"] += 1

    def _stop(self, fatal: RemoteError | None, retries: int) -> None:
        self.result.counts["retries"] += retries
        self.result.fatal = self.result.fatal or fatal


_GONE = "the invoice was deleted on the merchant platform, or the mapping is not its merchant id"


def _done(candidate: NoteCandidate, detail: str, attempts: int = 0) -> Writeback:
    return Writeback(
        candidate.invoice_id,
        "merchant",
        candidate.state,
        "done",
        uuid=candidate.uuid,
        detail=detail,
        attempts=attempts,
    )


def _refused(
    candidate: NoteCandidate, detail: str | None, message: str, attempts: int = 0
) -> Writeback:
    return Writeback(
        candidate.invoice_id,
        "merchant",
        candidate.state,
        "refused",
        uuid=candidate.uuid,
        detail=detail,
        message=message,
        attempts=attempts,
    )


# --- CRM.COM rejections --------------------------------------------------------------------
async def reject_in_crm(
    audit: AuditStore,
    client: CrmClient,
    dispatcher: Dispatcher,
    mapping: str,
    spec: CrmSpec,
    *,
    page: int = PAGE,
) -> TargetResult:
    """Reject in CRM.COM every invoice of ``mapping`` AppZen rejected (DRAFT ones only)."""
    result = TargetResult()
    reasons = spec.rejection_reasons

    async def reject(candidate: RejectCandidate) -> CrmInvoice:
        identifier = (spec.invoice_identifier, candidate.invoice_id)
        reason = (reasons.identifier, reasons.reason_for(candidate.reason))
        return await client.reject_draft(identifier, reason)

    after: str | None = None
    while result.fatal is None:
        found = await asyncio.to_thread(audit.reject_candidates, mapping, page, after)
        if not found:
            break
        after = found[-1].invoice_id
        report = await dispatcher.run(found, reject)
        result.fatal, result.counts["retries"] = (
            report.fatal,
            result.counts["retries"] + report.retries,
        )
        records = [_rejected(call, result) for call in report.results]
        await asyncio.to_thread(
            audit.record_writebacks, mapping, [r for r in records if r is not None]
        )
    return result


def _rejected(
    call: CallResult[RejectCandidate, CrmInvoice], result: TargetResult
) -> Writeback | None:
    """The write-back to record for one call (``None``: nothing final, retried next run)."""
    candidate = call.item
    result.counts["requests"] += call.attempts
    if call.value is not None:
        result.counts["crm_rejected"] += 1
        state = call.value.life_cycle_state
        return Writeback(
            candidate.invoice_id,
            "crm",
            "REJECTED",
            "done",
            uuid=candidate.uuid,
            detail=state,
            attempts=call.attempts,
        )
    assert call.error is not None
    result.counts["failed_crm"] += 1
    result.failures.append(
        _call_failure(
            "crm", candidate.invoice_id, candidate.uuid, call.error, attempts=call.attempts
        )
    )
    if isinstance(call.error, NotDraft):
        result.counts["crm_not_draft"] += 1
        return Writeback(
            candidate.invoice_id,
            "crm",
            "REJECTED",
            "refused",
            uuid=candidate.uuid,
            detail=call.error.state,
            message=call.error.message,
            attempts=call.attempts,
        )
    return None


# --- failed rows ---------------------------------------------------------------------------
def _call_failure(
    stage: Stage,
    invoice_id: str,
    uuid: str | None,
    error: RemoteError | RetriesExhausted,
    *,
    attempts: int,
    what: str = "",
) -> RowFailure:
    last = describe(error)
    exhausted = isinstance(error, RetriesExhausted)
    code = last.error_code or str(last.status or "error")
    return RowFailure(
        source_key=invoice_id,
        source_location=f"uuid {uuid}" if uuid else None,
        stage="retries_exhausted" if exhausted else stage,
        rule=f"retries_exhausted:{stage}" if exhausted else f"{stage}_{code}".lower(),
        message=str(error) if exhausted else last.message,
        hint=_HINTS[stage] if exhausted else _hint(error, what),
        http_status=last.status,
        error_code=last.error_code,
        attempts=attempts,
    )


def _hint(error: RemoteError | RetriesExhausted, what: str) -> str:
    if isinstance(error, NotDraft):
        return "not retried: reject or credit it in CRM.COM by hand if it must not be paid"
    suffix = " (reading the current note)" if what == "lookup" else ""
    return "fix what the message names; the next write-back tries again" + suffix


_HINTS: dict[Stage, str] = {
    "merchant": "transient merchant platform failure: the next write-back tries again",
    "crm": "transient CRM.COM failure: the next write-back tries again",
}


def _failure(
    stage: Stage, invoice_id: str, uuid: str | None, rule: str, *, message: str, hint: str
) -> RowFailure:
    return RowFailure(
        source_key=invoice_id,
        source_location=f"uuid {uuid}" if uuid else None,
        stage=stage,
        rule=rule,
        message=message,
        hint=hint,
    )


__all__: Sequence[str] = ["NoteWriter", "TargetResult", "reject_in_crm"]
