"""Recording what AppZen answered: send outcomes, status-sync pushes, and uuids AppZen lost.

A status push is written down twice: :func:`mark_pushes_in_doubt` before the request goes out
(``push_in_doubt``), :func:`record_pushes` (or :func:`clear_pushes_in_doubt`) once its outcome is
known. A push still in doubt when the next status-sync comes was cut off by a crash: pushing the
same status again may repeat it in AppZen, and status-sync counts it (``repushed_after_crash``).

Statements are executemany updates with bound parameters. SET clauses read only columns the same
statement does not assign (or are ordered explicitly), because MySQL evaluates assignments left to
right and the other dialects all at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.redact import scrub, scrub_optional
from pipeline.staging.claims import chunks, dump_json
from pipeline.staging.coltypes import UtcDateTime
from pipeline.staging.errors import StagingTerminalError
from pipeline.staging.records import PushRecord, SendOutcome
from pipeline.staging.tables import invoices as inv

_P = sa.bindparam  # executemany parameters are prefixed "p_": plain column names are reserved
_NOW = sa.bindparam("p_now", type_=UtcDateTime())


def record_outcomes(
    conn: Connection,
    *,
    mapping: str,
    run_id: int,
    outcomes: Sequence[SendOutcome],
    now: datetime,
    owner: str | None,
) -> None:
    """Apply one batch of outcomes; release those invoices' claims (only ``owner``'s if given)."""
    ordered = sorted(outcomes, key=lambda outcome: outcome.invoice_id)
    _check_staged(conn, mapping, [outcome.invoice_id for outcome in ordered])
    common = {"p_mapping": mapping, "p_run": run_id, "p_now": now, "p_owner": owner}
    for kind, statement in (
        ("acked", _acked_statement(owner)),
        ("rejected", _failed_statement("rejected", owner)),
        ("retryable_failed", _failed_statement("failed_retryable", owner)),
    ):
        params = [common | _params(outcome) for outcome in ordered if outcome.kind == kind]
        if params:
            conn.execute(statement, params)


def _check_staged(conn: Connection, mapping: str, keys: list[str]) -> None:
    if len(set(keys)) != len(keys):
        raise ValueError("record_outcomes: an invoice_id appears twice in one batch of outcomes")
    found: set[str] = set()
    for chunk in chunks(keys):
        query = (
            sa.select(inv.c.invoice_id)
            .where(inv.c.mapping == mapping, inv.c.invoice_id.in_(chunk))
            .with_for_update()
        )
        found.update(conn.execute(query).scalars())
    missing = sorted(set(keys) - found)
    if missing:
        raise StagingTerminalError(
            f"record_outcomes: mapping {mapping!r} has no staged invoice {missing[:5]} "
            f"({len(missing)} missing); an outcome must follow claim_batch for the same mapping"
        )


def _params(outcome: SendOutcome) -> dict[str, object]:
    bump = (
        outcome.kind == "acked"
        and outcome.expect == "create"
        and (outcome.appzen_status == "UPDATED")
        and outcome.cause == "crash"
    )
    return {
        "p_id": outcome.invoice_id,
        "p_hash": outcome.payload_hash,
        "p_payload": outcome.payload.decode("utf-8", errors="replace"),
        "p_uuid": outcome.uuid,
        "p_status": outcome.appzen_status,
        "p_http": outcome.http_status,
        "p_code": _clip(outcome.error_code, 64),
        "p_message": scrub_optional(outcome.error_message),  # AppZen may echo a credential
        "p_correlation": _clip(outcome.correlation_id, 128),
        "p_attempts": outcome.attempts,
        "p_historical": outcome.historical,
        "p_bump": 1 if bump else 0,
        "p_supplier_invoice": _clip(outcome.supplier_invoice, 200),
    }


def _clip(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def _where() -> sa.ColumnElement[bool]:
    return sa.and_(inv.c.mapping == _P("p_mapping"), inv.c.invoice_id == _P("p_id"))


def _release(owner: str | None) -> list[tuple[sa.Column[Any], Any]]:
    """claim_expires_at first: on MySQL its CASE must still see the old claimed_by."""
    if owner is None:
        return [(inv.c.claim_expires_at, None), (inv.c.claimed_by, None)]
    mine = inv.c.claimed_by == _P("p_owner")
    return [
        (inv.c.claim_expires_at, sa.case((mine, None), else_=inv.c.claim_expires_at)),
        (inv.c.claimed_by, sa.case((mine, None), else_=inv.c.claimed_by)),
    ]


def _acked_statement(owner: str | None) -> sa.Update:
    current = inv.c.payload_hash == _P("p_hash")
    assignments: list[tuple[sa.Column[Any], Any]] = [
        *_release(owner),
        (inv.c.state, sa.case((current, "sent"), else_="pending")),
        (inv.c.acked_hash, _P("p_hash")),
        (inv.c.acked_payload, _P("p_payload")),
        (inv.c.supplier_invoice, _P("p_supplier_invoice")),
        (inv.c.uuid, _P("p_uuid")),
        (inv.c.uuid_lost_at, None),
        (inv.c.appzen_status, _P("p_status")),
        (inv.c.attempts, _P("p_attempts")),
        (inv.c.send_count, inv.c.send_count + 1),
        (inv.c.resent_after_crash, inv.c.resent_after_crash + _P("p_bump")),
        (inv.c.last_http_status, _P("p_http")),
        (inv.c.error_code, None),
        (inv.c.error_message, None),
        (inv.c.correlation_id, _P("p_correlation")),
        (inv.c.historical, _P("p_historical")),
        (inv.c.first_sent_at, sa.func.coalesce(inv.c.first_sent_at, _NOW)),
        (inv.c.last_sent_at, _NOW),
        (inv.c.last_run_id, _P("p_run")),
        (inv.c.in_doubt_run_id, None),
        (inv.c.updated_at, _NOW),
    ]
    return sa.update(inv).where(_where()).ordered_values(*assignments)


def _failed_statement(state: str, owner: str | None) -> sa.Update:
    extra: list[tuple[sa.Column[Any], Any]]
    if state == "rejected":
        current = inv.c.payload_hash == _P("p_hash")
        extra = [
            (inv.c.state, sa.case((current, "rejected"), else_="pending")),
            (inv.c.rejected_hash, _P("p_hash")),
            (inv.c.in_doubt_run_id, None),  # a refusal is a clear answer
        ]
    else:
        extra = [(inv.c.state, state)]
    assignments: list[tuple[sa.Column[Any], Any]] = [
        *_release(owner),
        *extra,
        (inv.c.attempts, _P("p_attempts")),
        (inv.c.last_http_status, _P("p_http")),
        (inv.c.error_code, _P("p_code")),
        (inv.c.error_message, _P("p_message")),
        (inv.c.correlation_id, _P("p_correlation")),
        (inv.c.historical, _P("p_historical")),
        (inv.c.last_run_id, _P("p_run")),
        (inv.c.updated_at, _NOW),
    ]
    return sa.update(inv).where(_where()).ordered_values(*assignments)


def mark_recreate(
    conn: Connection, mapping: str, invoice_id: str, reason: str, now: datetime
) -> None:
    """AppZen no longer knows the uuid: resend as a create; what was pushed is gone with it."""
    stmt = (
        sa.update(inv)
        .where(inv.c.mapping == mapping, inv.c.invoice_id == invoice_id)
        .values(
            state="recreate",
            uuid_lost_at=now,
            error_code=None,
            error_message=scrub(reason),
            pushed_status=None,
            pushed_error=None,
            push_in_doubt=None,
            push_pending=sa.or_(inv.c.erp_status.is_not(None), inv.c.erp_error.is_not(None)),
            updated_at=now,
        )
    )
    if conn.execute(stmt).rowcount != 1:
        raise StagingTerminalError(
            f"mark_recreate: mapping {mapping!r} has no staged invoice {invoice_id!r}; "
            "only an invoice staging knows a uuid for can be recreated"
        )


def record_pushes(
    conn: Connection, mapping: str, pushed: Sequence[PushRecord], at: datetime
) -> None:
    """Remember what status-sync pushed; still pending if the ERP side moved on meanwhile."""
    if not pushed:
        return
    status, error = _P("p_status", type_=inv.c.pushed_status.type), _P("p_error", type_=sa.Text())
    stmt = (
        sa.update(inv)
        .where(_where())
        .values(
            push_pending=sa.or_(
                inv.c.erp_status.is_distinct_from(status), inv.c.erp_error.is_distinct_from(error)
            ),
            pushed_status=status,
            pushed_error=error,
            push_in_doubt=None,
            pushed_at=_NOW,
            push_count=inv.c.push_count + 1,
            updated_at=_NOW,
        )
    )
    rows = [
        {
            "p_mapping": mapping,
            "p_id": push.invoice_id,
            "p_status": push.status,
            "p_error": dump_json(push.error),
            "p_now": at,
        }
        for push in sorted(pushed, key=lambda push: push.invoice_id)
    ]
    conn.execute(stmt, rows)


def push_intent(status: str | None, error_json: str | None) -> str:
    """What ``push_in_doubt`` holds for a push of ``status`` and ``error_json`` (the canonical JSON
    text ``erp_error`` is stored as)."""
    return dump_json({"status": status, "error": error_json}) or ""


def mark_pushes_in_doubt(
    conn: Connection, mapping: str, pushes: Sequence[PushRecord], at: datetime
) -> None:
    """Before pushing: remember what each push reports, until its outcome is recorded."""
    if not pushes:
        return
    stmt = sa.update(inv).where(_where()).values(push_in_doubt=_P("p_doubt"), updated_at=_NOW)
    rows = [
        {
            "p_mapping": mapping,
            "p_id": push.invoice_id,
            "p_doubt": push_intent(push.status, dump_json(push.error)),
            "p_now": at,
        }
        for push in sorted(pushes, key=lambda push: push.invoice_id)
    ]
    conn.execute(stmt, rows)


def clear_pushes_in_doubt(
    conn: Connection, mapping: str, invoice_ids: Sequence[str], at: datetime
) -> None:
    """AppZen surely did not take these pushes (it refused them, or never answered but 429)."""
    for chunk in chunks(sorted(invoice_ids)):
        conn.execute(
            sa.update(inv)
            .where(inv.c.mapping == mapping, inv.c.invoice_id.in_(chunk))
            .values(push_in_doubt=None, updated_at=at)
        )
