"""AppZen audit outcomes and ERP-side write-backs in staging (migration 003_outcomes).

``audit_outcomes`` holds one outcome per (mapping, invoice_id): APPROVED or REJECTED, the header
risk, the reason (the rule that decided it) and every rule, polled from AppZen or imported from a
file; a polled outcome never replaces a newer one. ``writebacks`` remembers, per invoice and
target system (``merchant``, ``crm``), which AppZen state it was told and how that ended: ``done``,
or ``refused`` (a row failure such as a CRM invoice no longer DRAFT: it is not retried until the
state to tell changes). Candidates are what each system still has to hear, keyset-paginated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.redact import scrub, scrub_optional
from pipeline.staging.claims import chunks
from pipeline.staging.halves import StoreHalf
from pipeline.staging.tables import KEY_CHARS, STATUS_CHARS, audit_outcomes, writebacks
from pipeline.staging.tables import invoices as inv

Outcome = Literal["APPROVED", "REJECTED"]
OutcomeSource = Literal["poll", "file"]
Target = Literal["merchant", "crm"]
WritebackResult = Literal["done", "refused"]
OUTCOMES: tuple[Outcome, ...] = ("APPROVED", "REJECTED")
_P = sa.bindparam


@dataclass(frozen=True, slots=True)
class AuditOutcome:
    """AppZen's verdict on one invoice (``rules``: ``{rule_code, risk_level, risk_message}``)."""

    invoice_id: str
    outcome: Outcome
    uuid: str | None = None
    appzen_status: str | None = None
    risk_level: str | None = None
    reason: str | None = None
    message: str | None = None
    rules: tuple[dict[str, str | None], ...] = ()
    source: OutcomeSource = "poll"
    appzen_updated_at: datetime | None = None
    recorded_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.invoice_id or len(self.invoice_id) > KEY_CHARS:
            raise ValueError(f"AuditOutcome: invoice_id must be 1..{KEY_CHARS} characters")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"AuditOutcome {self.invoice_id!r}: outcome must be one of {OUTCOMES}")


@dataclass(frozen=True, slots=True)
class Writeback:
    """What one target system was told about one invoice, and how it ended."""

    invoice_id: str
    target: Target
    state: str
    result: WritebackResult
    uuid: str | None = None
    detail: str | None = None
    message: str | None = None
    attempts: int = 1
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoteCandidate:
    """An acknowledged invoice whose merchant note does not show its AppZen state yet."""

    invoice_id: str
    uuid: str
    state: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class RejectCandidate:
    """An invoice AppZen rejected that CRM.COM has not been asked to reject yet."""

    invoice_id: str
    uuid: str | None
    reason: str | None


def _short(text: str | None, limit: int = STATUS_CHARS) -> str | None:
    """``text`` scrubbed of secrets and cut to ``limit`` characters."""
    return None if text is None else scrub(text[: limit + 200])[:limit]


# --- outcomes ------------------------------------------------------------------------------
def record_outcomes(
    conn: Connection, mapping: str, outcomes: Sequence[AuditOutcome], now: datetime
) -> int:
    """Insert or replace outcomes (the last one per key wins); a polled outcome older than the
    stored one is skipped. The number stored."""
    latest = {outcome.invoice_id: outcome for outcome in outcomes}
    keys = sorted(latest)
    stored = _stored_times(conn, audit_outcomes, mapping, keys)
    inserts, updates = [], []
    for key in keys:
        outcome = latest[key]
        row = _outcome_row(mapping, outcome, now)
        if key not in stored:
            inserts.append(row)
        elif not _older(outcome, stored[key]):
            updates.append({f"p_{name}": value for name, value in row.items()})
    if inserts:
        conn.execute(sa.insert(audit_outcomes), inserts)
    if updates:
        conn.execute(_update(audit_outcomes, updates[0], ("mapping", "invoice_id")), updates)
    return len(inserts) + len(updates)


def _older(outcome: AuditOutcome, stored_at: datetime | None) -> bool:
    new_at = outcome.appzen_updated_at
    if outcome.source != "poll" or new_at is None or stored_at is None:
        return False
    return new_at < stored_at


def _outcome_row(mapping: str, outcome: AuditOutcome, now: datetime) -> dict[str, Any]:
    return {
        "mapping": mapping,
        "invoice_id": outcome.invoice_id,
        "uuid": _short(outcome.uuid, 100),
        "outcome": outcome.outcome,
        "appzen_status": _short(outcome.appzen_status, 32),
        "risk_level": _short(outcome.risk_level, 32),
        "reason": _short(outcome.reason),
        "message": scrub_optional(outcome.message),
        "rules": json.dumps(list(outcome.rules), ensure_ascii=False) if outcome.rules else None,
        "source": outcome.source,
        "appzen_updated_at": outcome.appzen_updated_at,
        "recorded_at": now,
    }


def get_outcome(conn: Connection, mapping: str, invoice_id: str) -> AuditOutcome | None:
    """The stored outcome of one invoice, or ``None``."""
    row = conn.execute(
        sa.select(audit_outcomes).where(
            audit_outcomes.c.mapping == mapping, audit_outcomes.c.invoice_id == invoice_id
        )
    ).first()
    if row is None:
        return None
    return AuditOutcome(
        invoice_id=row.invoice_id,
        outcome=row.outcome,
        uuid=row.uuid,
        appzen_status=row.appzen_status,
        risk_level=row.risk_level,
        reason=row.reason,
        message=row.message,
        rules=tuple(json.loads(row.rules)) if row.rules else (),
        source=row.source,
        appzen_updated_at=row.appzen_updated_at,
        recorded_at=row.recorded_at,
    )


def invoices_by_uuid(conn: Connection, uuids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """``{uuid: [(mapping, invoice_id), …]}`` for the staged invoices AppZen knows by these."""
    found: dict[str, list[tuple[str, str]]] = {}
    for chunk in chunks(sorted(set(uuids))):
        query = sa.select(inv.c.uuid, inv.c.mapping, inv.c.invoice_id).where(inv.c.uuid.in_(chunk))
        for uuid, mapping, invoice_id in conn.execute(query):
            found.setdefault(uuid, []).append((mapping, invoice_id))
    return found


def mappings_of(
    conn: Connection, invoice_ids: Sequence[str], mappings: Sequence[str]
) -> dict[str, list[str]]:
    """``{invoice_id: [mapping, …]}``: which of ``mappings`` stage each invoice id."""
    found: dict[str, list[str]] = {}
    for chunk in chunks(sorted(set(invoice_ids))):
        query = sa.select(inv.c.invoice_id, inv.c.mapping).where(
            inv.c.invoice_id.in_(chunk), inv.c.mapping.in_(list(mappings))
        )
        for invoice_id, mapping in conn.execute(query.order_by(inv.c.mapping)):
            found.setdefault(invoice_id, []).append(mapping)
    return found


# --- write-backs ---------------------------------------------------------------------------
def record_writebacks(
    conn: Connection, mapping: str, records: Sequence[Writeback], now: datetime
) -> None:
    """Insert or replace what each target was told (one row per invoice and target)."""
    for target in sorted({record.target for record in records}):
        latest = {r.invoice_id: r for r in records if r.target == target}
        keys = sorted(latest)
        stored = _stored_times(conn, writebacks, mapping, keys, target)
        rows = [_writeback_row(mapping, latest[key], now) for key in keys]
        inserts = [row for row in rows if row["invoice_id"] not in stored]
        updates = [
            {f"p_{name}": value for name, value in row.items()}
            for row in rows
            if row["invoice_id"] in stored
        ]
        if inserts:
            conn.execute(sa.insert(writebacks), inserts)
        if updates:
            key_columns = ("mapping", "invoice_id", "target")
            conn.execute(_update(writebacks, updates[0], key_columns), updates)


def _writeback_row(mapping: str, record: Writeback, now: datetime) -> dict[str, Any]:
    return {
        "mapping": mapping,
        "invoice_id": record.invoice_id,
        "target": record.target,
        "uuid": _short(record.uuid, 100),
        "state": record.state[:32],
        "result": record.result,
        "detail": _short(record.detail),
        "message": scrub_optional(record.message),
        "attempts": record.attempts,
        "updated_at": now,
    }


def get_writeback(
    conn: Connection, mapping: str, invoice_id: str, target: Target
) -> Writeback | None:
    """What ``target`` was last told about one invoice, or ``None``."""
    w = writebacks.c
    row = conn.execute(
        sa.select(writebacks).where(
            w.mapping == mapping, w.invoice_id == invoice_id, w.target == target
        )
    ).first()
    if row is None:
        return None
    return Writeback(
        invoice_id=row.invoice_id,
        target=row.target,
        state=row.state,
        result=row.result,
        uuid=row.uuid,
        detail=row.detail,
        message=row.message,
        attempts=int(row.attempts),
        updated_at=row.updated_at,
    )


def note_candidates(
    conn: Connection, mapping: str, limit: int, after_key: str | None
) -> list[NoteCandidate]:
    """Sent invoices whose merchant note does not show (uuid, audit outcome or CREATED/UPDATED)."""
    a, w = audit_outcomes.alias("a"), writebacks.alias("w")
    state = sa.func.coalesce(a.c.outcome, inv.c.appzen_status)
    joined = inv.outerjoin(
        a, sa.and_(a.c.mapping == inv.c.mapping, a.c.invoice_id == inv.c.invoice_id)
    ).outerjoin(
        w,
        sa.and_(
            w.c.mapping == inv.c.mapping,
            w.c.invoice_id == inv.c.invoice_id,
            w.c.target == "merchant",
        ),
    )
    query = (
        sa.select(inv.c.invoice_id, inv.c.uuid, state.label("state"), a.c.reason)
        .select_from(joined)
        .where(
            inv.c.mapping == mapping,
            inv.c.state == "sent",
            inv.c.uuid.is_not(None),
            sa.or_(w.c.invoice_id.is_(None), w.c.uuid != inv.c.uuid, w.c.state != state),
        )
    )
    if after_key is not None:
        query = query.where(inv.c.invoice_id > after_key)
    rows = conn.execute(query.order_by(inv.c.invoice_id).limit(limit))
    return [NoteCandidate(r.invoice_id, r.uuid, r.state, r.reason) for r in rows]


def reject_candidates(
    conn: Connection, mapping: str, limit: int, after_key: str | None
) -> list[RejectCandidate]:
    """Invoices AppZen rejected that CRM.COM was never asked to reject."""
    a, w = audit_outcomes, writebacks.alias("w")
    joined = a.outerjoin(
        w,
        sa.and_(w.c.mapping == a.c.mapping, w.c.invoice_id == a.c.invoice_id, w.c.target == "crm"),
    )
    query = (
        sa.select(a.c.invoice_id, a.c.uuid, a.c.reason)
        .select_from(joined)
        .where(a.c.mapping == mapping, a.c.outcome == "REJECTED", w.c.invoice_id.is_(None))
    )
    if after_key is not None:
        query = query.where(a.c.invoice_id > after_key)
    rows = conn.execute(query.order_by(a.c.invoice_id).limit(limit))
    return [RejectCandidate(r.invoice_id, r.uuid, r.reason) for r in rows]


# --- plumbing ------------------------------------------------------------------------------
def _stored_times(
    conn: Connection,
    table: sa.Table,
    mapping: str,
    keys: list[str],
    target: str | None = None,
) -> dict[str, datetime | None]:
    """The rows of ``keys`` that exist (locked for this transaction), with their update time."""
    stamp = table.c.appzen_updated_at if target is None else table.c.updated_at
    found: dict[str, datetime | None] = {}
    for chunk in chunks(keys):
        query = sa.select(table.c.invoice_id, stamp).where(
            table.c.mapping == mapping, table.c.invoice_id.in_(chunk)
        )
        if target is not None:
            query = query.where(table.c.target == target)
        for key, moment in conn.execute(query.with_for_update()):
            found[key] = moment
    return found


def _update(table: sa.Table, sample: dict[str, Any], keys: tuple[str, ...]) -> sa.Update:
    """An executemany UPDATE of every column in ``sample`` (``p_``-prefixed), matched on keys."""
    columns = [name.removeprefix("p_") for name in sample if name.removeprefix("p_") not in keys]
    values = {name: _P(f"p_{name}", type_=table.c[name].type) for name in columns}
    where = [table.c[name] == _P(f"p_{name}") for name in keys]
    return sa.update(table).where(*where).values(values)


class AuditStore(StoreHalf):
    """The outcome and write-back half of :class:`~pipeline.staging.StagingStore` (its
    ``audit`` property): every method is one transaction of the store (retried on deadlock)."""

    def record_outcomes(self, mapping: str, found: Sequence[AuditOutcome]) -> int:
        """Store AppZen outcomes (a polled one never replaces a newer one); how many stored."""
        now = self._now()
        stored: int = self._write(
            f"recording {len(found)} audit outcomes for {mapping!r}",
            lambda c: record_outcomes(c, mapping, found, now),
        )
        return stored

    def outcome(self, mapping: str, invoice_id: str) -> AuditOutcome | None:
        """The stored AppZen outcome of one invoice, or ``None``."""
        found: AuditOutcome | None = self._read(
            f"reading the outcome of {invoice_id!r}", lambda c: get_outcome(c, mapping, invoice_id)
        )
        return found

    def invoices_by_uuid(self, uuids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """``{uuid: [(mapping, invoice_id), …]}`` for staged invoices with these uuids."""
        found: dict[str, list[tuple[str, str]]] = self._read(
            "finding invoices by uuid", lambda c: invoices_by_uuid(c, uuids)
        )
        return found

    def mappings_of(
        self, invoice_ids: Sequence[str], mappings: Sequence[str]
    ) -> dict[str, list[str]]:
        """``{invoice_id: [mapping, …]}``: which of ``mappings`` stage each invoice id."""
        found: dict[str, list[str]] = self._read(
            "finding the mappings of invoices", lambda c: mappings_of(c, invoice_ids, mappings)
        )
        return found

    def note_candidates(
        self, mapping: str, limit: int, after_key: str | None = None
    ) -> list[NoteCandidate]:
        """Sent invoices whose merchant note does not show their AppZen state yet (by key)."""
        found: list[NoteCandidate] = self._read(
            "listing merchant note candidates",
            lambda c: note_candidates(c, mapping, limit, after_key),
        )
        return found

    def reject_candidates(
        self, mapping: str, limit: int, after_key: str | None = None
    ) -> list[RejectCandidate]:
        """Invoices AppZen rejected that CRM.COM was not asked to reject yet (by key)."""
        found: list[RejectCandidate] = self._read(
            "listing CRM.COM reject candidates",
            lambda c: reject_candidates(c, mapping, limit, after_key),
        )
        return found

    def record_writebacks(self, mapping: str, records: Sequence[Writeback]) -> None:
        """Remember what each target system was told, and how it ended."""
        now = self._now()
        self._write(
            f"recording {len(records)} write-backs for {mapping!r}",
            lambda c: record_writebacks(c, mapping, records, now),
        )

    def writeback(self, mapping: str, invoice_id: str, target: Target) -> Writeback | None:
        """What ``target`` was last told about one invoice, or ``None``."""
        found: Writeback | None = self._read(
            f"reading the {target} write-back of {invoice_id!r}",
            lambda c: get_writeback(c, mapping, invoice_id, target),
        )
        return found
