"""Planning and claiming a batch: upsert the items, decide per invoice, claim the sends atomically.

One transaction, a handful of statements per batch whatever its size: one executemany upsert
(rows sorted by key, so concurrent batches lock rows in the same order and cannot deadlock on
them), one ``SELECT … IN`` per chunk, one conditional ``UPDATE … IN`` per chunk. The conditional
update only takes rows whose claim is free, already ours, or expired, and the ids it actually
updated (``RETURNING``, or a re-read of the locked rows where MySQL lacks it) are the only
``send`` decisions: two workers can never both be told to send the same invoice.

A claim belongs to its owner's run (:mod:`pipeline.staging.owners`) for as long as that owner
lives, however long the batch takes; the claim of an owner that is gone is taken over at once.
Claims whose token no run records (written before owners were recorded) expire with their
``claim_expires_at``. Each ``send`` says why AppZen may already hold the invoice (``cause``):
``invoices.in_doubt_run_id`` names the run that claimed it to send and recorded no clear answer.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Connection

from pipeline.staging import owners as owning
from pipeline.staging.records import (
    Decision,
    ErpError,
    Expect,
    InvoiceState,
    ResendCause,
    StageItem,
)
from pipeline.staging.tables import invoices as inv

CHUNK = 500
"""Keys per ``IN`` list: well under every dialect's bound-parameter limit."""


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """The arguments of one claim_batch call, bundled."""

    mapping: str
    owner: str
    now: datetime
    until: datetime
    force: bool
    retry_failed: bool
    run_id: int


def dump_json(value: ErpError | dict[str, Any] | None) -> str | None:
    """Canonical JSON text (sorted keys, no spaces), so equal values compare equal in SQL."""
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[list[str]]:
    """``values`` in lists of at most ``size``."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def claim_batch(
    conn: Connection, request: ClaimRequest, items: Sequence[StageItem]
) -> list[Decision]:
    """Upsert ``items``, decide each, claim every ``send``; decisions in the order of ``items``."""
    _refuse_duplicates(items)
    ordered = sorted(items, key=lambda item: item.invoice_id)
    if not ordered:
        return []
    conn.execute(_upsert(conn.dialect.name), [_insert_row(request, item) for item in ordered])
    keys = [item.invoice_id for item in ordered]
    rows = {row.invoice_id: row for chunk in chunks(keys) for row in _read(conn, request, chunk)}
    holders = Holders.read(conn, request, rows.values())
    decisions = {key: _decide(rows[key], request, holders) for key in keys}
    wanted = [key for key in keys if decisions[key].action == "send"]
    claimed = _claim(conn, request, wanted, holders.takeable)
    for key in wanted:
        if key not in claimed:
            decisions[key] = _busy(decisions[key])
    return [decisions[item.invoice_id] for item in items]


def plan_batch(
    conn: Connection, request: ClaimRequest, items: Sequence[StageItem]
) -> list[Decision]:
    """What :func:`claim_batch` would decide, without writing anything (``--dry-run``)."""
    _refuse_duplicates(items)
    keys = sorted(item.invoice_id for item in items)
    rows = {row.invoice_id: row for chunk in chunks(keys) for row in _read(conn, request, chunk)}
    holders = Holders.read(conn, request, rows.values())
    decisions = []
    for item in items:
        row = rows.get(item.invoice_id)
        if row is None:
            decisions.append(Decision(item.invoice_id, "send", "create", None, "pending"))
            continue
        seen = {**row._asdict(), "payload_hash": item.payload_hash}
        decisions.append(_decide(SimpleNamespace(**seen), request, holders))  # type: ignore[arg-type]
    return decisions


@dataclass(frozen=True, slots=True)
class Holders:
    """The runs behind a batch's claims: who holds each claimed row, which holders are gone,
    and the runs that claimed each row last (for the ``cause`` of a send)."""

    now: datetime
    by_token: dict[str, owning.OwnerState]
    gone: dict[str, str]
    """Holders found gone, with the reason."""
    last_runs: dict[int, owning.OwnerState]
    """The runs with a send in doubt (``in_doubt_run_id``) of the batch's rows."""
    takeable: frozenset[str]
    """Claim tokens another run may take: gone holders, and expired claims no run records."""

    @classmethod
    def read(cls, conn: Connection, request: ClaimRequest, rows: Iterable[sa.Row[Any]]) -> Holders:
        """Look up the holders and last claimers of ``rows`` (a query or two per batch)."""
        rows = list(rows)
        tokens = {r.claimed_by for r in rows if r.claimed_by not in (None, request.owner)}
        by_token = owning.states_of(conn, tokens)
        now = request.now
        gone = {t: why for t, s in by_token.items() if (why := owning.gone_reason(s, now))}
        expired = {
            r.claimed_by
            for r in rows
            if r.claimed_by in tokens
            and r.claimed_by not in by_token
            and (r.claim_expires_at is None or r.claim_expires_at <= now)
        }
        ids = {int(r.in_doubt_run_id) for r in rows if r.in_doubt_run_id is not None}
        last_runs = owning.runs_by_id(conn, ids - {request.run_id})
        return cls(now, by_token, gone, last_runs, frozenset(gone) | frozenset(expired))

    def busy_with(self, row: sa.Row[Any], request: ClaimRequest) -> str | None:
        """The live holder of ``row``'s claim (``run 12 (host …, pid …)``), if another holds it."""
        token = row.claimed_by
        if token is None or token == request.owner or token in self.takeable:
            return None
        state = self.by_token.get(token)
        return state.describe() if state is not None else f"claim {token}"

    def cause(self, row: sa.Row[Any], request: ClaimRequest) -> ResendCause:
        """Why AppZen may already hold ``row``'s invoice (see :data:`ResendCause`)."""
        holder = self.by_token.get(row.claimed_by) if row.claimed_by else None
        if holder is None and row.in_doubt_run_id is not None:
            holder = self.last_runs.get(int(row.in_doubt_run_id))
            if holder is None and int(row.in_doubt_run_id) == request.run_id:
                return "lost_answer"
        if holder is None:
            return "other_worker"
        died = holder.status in ("running", "crashed") and (
            holder.status == "crashed" or owning.gone_reason(holder, self.now) is not None
        )
        return "crash" if died else "lost_answer"


def release_claims(conn: Connection, owner: str, mapping: str | None = None) -> int:
    """Free every claim ``owner`` holds (its batch aborted); the rows keep their state."""
    stmt = sa.update(inv).where(inv.c.claimed_by == owner)
    if mapping is not None:
        stmt = stmt.where(inv.c.mapping == mapping)
    return conn.execute(stmt.values(claimed_by=None, claim_expires_at=None)).rowcount


def _refuse_duplicates(items: Sequence[StageItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.invoice_id in seen:
            raise ValueError(
                f"claim_batch: invoice_id {item.invoice_id!r} appears twice in one batch; "
                "deduplicate the batch first (the mapping engine reports duplicate keys)"
            )
        seen.add(item.invoice_id)


def _insert_row(request: ClaimRequest, item: StageItem) -> dict[str, object]:
    return {
        "mapping": request.mapping,
        "invoice_id": item.invoice_id,
        "state": "pending",
        "payload_hash": item.payload_hash,
        "source_hash": item.source_hash,
        "attempts": 0,
        "send_count": 0,
        "resent_after_crash": 0,
        "erp_status": item.erp_status,
        "erp_error": dump_json(item.erp_error),
        "push_count": 0,
        "push_pending": item.erp_status is not None or item.erp_error is not None,
        "last_run_id": request.run_id,
        "created_at": request.now,
        "updated_at": request.now,
    }


@functools.cache
def _upsert(dialect: str) -> sa.Insert:
    """INSERT new rows as pending; on an existing key refresh the ERP side and the state.

    Every SET expression reads only columns this statement does not assign, or the inserted
    values: MySQL evaluates assignments left to right, the others all at once.
    """
    module: Any = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect, mysql)
    stmt = module.insert(inv)
    new = stmt.inserted if module is mysql else stmt.excluded
    # Constants are inlined: a bound parameter after VALUES defeats PyMySQL's multi-row insert.
    sent: sa.ColumnElement[str] = sa.literal_column("'sent'")
    rejected: sa.ColumnElement[str] = sa.literal_column("'rejected'")
    pending: sa.ColumnElement[str] = sa.literal_column("'pending'")
    changes = {
        "state": sa.case(
            (
                sa.and_(inv.c.state == sent, inv.c.acked_hash.is_distinct_from(new.payload_hash)),
                pending,
            ),
            (
                sa.and_(
                    inv.c.state == rejected, inv.c.rejected_hash.is_distinct_from(new.payload_hash)
                ),
                pending,
            ),
            else_=inv.c.state,
        ),
        "payload_hash": new.payload_hash,
        "source_hash": new.source_hash,
        "erp_status": new.erp_status,
        "erp_error": new.erp_error,
        "push_pending": sa.or_(
            new.erp_status.is_distinct_from(inv.c.pushed_status),
            new.erp_error.is_distinct_from(inv.c.pushed_error),
        ),
        "last_run_id": new.last_run_id,
        "updated_at": new.updated_at,
    }
    if module is mysql:
        return stmt.on_duplicate_key_update(**changes)  # type: ignore[no-any-return]
    keys = [inv.c.mapping, inv.c.invoice_id]
    return stmt.on_conflict_do_update(index_elements=keys, set_=changes)  # type: ignore[no-any-return]


def _read(conn: Connection, request: ClaimRequest, keys: list[str]) -> Sequence[sa.Row[Any]]:
    columns = (
        inv.c.invoice_id,
        inv.c.state,
        inv.c.payload_hash,
        inv.c.acked_hash,
        inv.c.rejected_hash,
        inv.c.uuid,
        inv.c.uuid_lost_at,
        inv.c.claimed_by,
        inv.c.claim_expires_at,
        inv.c.in_doubt_run_id,
    )
    query = sa.select(*columns).where(inv.c.mapping == request.mapping, inv.c.invoice_id.in_(keys))
    return conn.execute(query).all()


def _decide(row: sa.Row[Any], request: ClaimRequest, holders: Holders) -> Decision:
    state: InvoiceState = row.state

    def decision(action: Any, expect: Expect | None = None, **extra: Any) -> Decision:
        return Decision(row.invoice_id, action, expect, row.uuid, state, **extra)

    if not request.force:
        if state == "sent" and row.payload_hash == row.acked_hash:
            return decision("unchanged")
        if (
            not request.retry_failed
            and state == "rejected"
            and (row.payload_hash == row.rejected_hash)
        ):
            return decision("rejected_unchanged")
    holder = holders.busy_with(row, request)
    if holder is not None:
        return decision("busy", holder=holder)
    expect: Expect = "create" if row.uuid is None or row.uuid_lost_at else "update"
    return decision("send", expect, cause=holders.cause(row, request))


def _busy(decision: Decision) -> Decision:
    """A send whose claim another run took first (between this batch's read and its update)."""
    return Decision(
        decision.invoice_id, "busy", None, decision.uuid, decision.state, holder="another run"
    )


def _claim(
    conn: Connection, request: ClaimRequest, keys: list[str], takeable: frozenset[str]
) -> set[str]:
    """Claim ``keys`` where the claim is free, ours or ``takeable``; the ids actually claimed."""
    claimed: set[str] = set()
    for chunk in chunks(keys):
        free = sa.or_(
            inv.c.claimed_by.is_(None),
            inv.c.claimed_by == request.owner,
            inv.c.claimed_by.in_(sorted(takeable)) if takeable else sa.false(),
        )
        stmt = (
            sa.update(inv)
            .where(inv.c.mapping == request.mapping, inv.c.invoice_id.in_(chunk), free)
            .values(
                claimed_by=request.owner,
                claim_expires_at=request.until,
                in_doubt_run_id=request.run_id,
            )
        )
        if conn.dialect.update_returning:
            claimed.update(conn.execute(stmt.returning(inv.c.invoice_id)).scalars())
            continue
        conn.execute(stmt)
        mine = sa.select(inv.c.invoice_id).where(
            inv.c.mapping == request.mapping,
            inv.c.invoice_id.in_(chunk),
            inv.c.claimed_by == request.owner,
            inv.c.claim_expires_at == request.until,
        )
        claimed.update(conn.execute(mine).scalars())
    return claimed
