"""Read-only queries on ``invoices``: one invoice, counts, samples, status-sync candidates."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.staging.claims import chunks
from pipeline.staging.outcomes import push_intent
from pipeline.staging.records import InvoiceRecord, StatusCandidate
from pipeline.staging.tables import invoices as inv

_LOOKUP_KEYS = 2_000
"""Keys per source-hash lookup statement (SQLite's 32,766 and MySQL's bound limits are far)."""
_ACKED_SOURCES = (
    "SELECT invoice_id, CASE WHEN state = 'sent' AND payload_hash = acked_hash "
    "THEN source_hash END FROM invoices WHERE mapping = {mark} AND invoice_id IN ({keys})"
)
"""The :func:`acked_sources` lookup; ``{mark}``: the driver's placeholder."""


def _json(text: str | None) -> dict[str, object] | None:
    return None if text is None else dict(json.loads(text))


def invoice_record(row: sa.Row[Any]) -> InvoiceRecord:
    """An ``invoices`` row as a record (JSON decoded, payload as the bytes that were sent)."""
    values = row._asdict()
    values["erp_error"] = _json(row.erp_error)
    values["pushed_error"] = _json(row.pushed_error)
    values["acked_payload"] = None if row.acked_payload is None else row.acked_payload.encode()
    values["historical"] = None if row.historical is None else bool(row.historical)
    values["push_pending"] = bool(row.push_pending)
    return InvoiceRecord(**values)


def get_invoice(conn: Connection, mapping: str, invoice_id: str) -> InvoiceRecord | None:
    """One invoice, or ``None`` if staging has never seen it."""
    query = sa.select(inv).where(inv.c.mapping == mapping, inv.c.invoice_id == invoice_id)
    row = conn.execute(query).first()
    return None if row is None else invoice_record(row)


def count_by_state(conn: Connection, mapping: str) -> dict[str, int]:
    """``{state: count}`` for one mapping (states with no invoice are absent)."""
    query = (
        sa.select(inv.c.state, sa.func.count())
        .where(inv.c.mapping == mapping)
        .group_by(inv.c.state)
    )
    return {state: int(count) for state, count in conn.execute(query)}


def sample_sent(conn: Connection, mapping: str, n: int) -> list[InvoiceRecord]:
    """Up to ``n`` acknowledged invoices chosen at random (for reconciliation)."""
    shuffle = sa.func.rand() if conn.dialect.name in {"mysql", "mariadb"} else sa.func.random()
    query = (
        sa.select(inv)
        .where(inv.c.mapping == mapping, inv.c.state == "sent", inv.c.uuid.is_not(None))
        .order_by(shuffle)
        .limit(n)
    )
    return [invoice_record(row) for row in conn.execute(query)]


def status_candidates(
    conn: Connection, mapping: str, limit: int, after_key: str | None
) -> list[StatusCandidate]:
    """Acknowledged invoices whose ERP status was not pushed yet, by key, after ``after_key``.

    Walks ``ix_invoices_push (mapping, push_pending, invoice_id)``: cost follows the pending rows,
    not the table.
    """
    query = sa.select(
        inv.c.invoice_id,
        inv.c.uuid,
        inv.c.erp_status,
        inv.c.erp_error,
        inv.c.pushed_status,
        inv.c.pushed_error,
        inv.c.push_in_doubt,
    ).where(
        inv.c.mapping == mapping,
        inv.c.push_pending == sa.true(),
        inv.c.state == "sent",
        inv.c.uuid.is_not(None),
    )
    if after_key is not None:
        query = query.where(inv.c.invoice_id > after_key)
    query = query.order_by(inv.c.invoice_id).limit(limit)
    return [
        StatusCandidate(
            row.invoice_id,
            row.uuid,
            row.erp_status,
            _json(row.erp_error),
            row.pushed_status,
            _json(row.pushed_error),
            row.push_in_doubt is not None
            and row.push_in_doubt == push_intent(row.erp_status, row.erp_error),
        )
        for row in conn.execute(query)
    ]


def failed_invoice_ids(conn: Connection, mapping: str) -> set[str]:
    """Invoices whose state is ``rejected`` or ``failed_retryable``."""
    query = sa.select(inv.c.invoice_id).where(
        inv.c.mapping == mapping, inv.c.state.in_(("rejected", "failed_retryable"))
    )
    return set(conn.execute(query).scalars())


def invoices_in_state(
    conn: Connection, mapping: str, state: str, limit: int, after_key: str | None
) -> list[InvoiceRecord]:
    """Invoices of ``mapping`` in ``state``, by key after ``after_key`` (keyset pages)."""
    query = sa.select(inv).where(inv.c.mapping == mapping, inv.c.state == state)
    if after_key is not None:
        query = query.where(inv.c.invoice_id > after_key)
    query = query.order_by(inv.c.invoice_id).limit(limit)
    return [invoice_record(row) for row in conn.execute(query)]


def supplier_invoices(conn: Connection, mapping: str, keys: list[str]) -> dict[str, list[str]]:
    """The sent invoices of ``mapping`` with each of ``keys`` (supplier + normalised supplier
    invoice number, :func:`pipeline.mapping.checks.supplier_invoice_key`): key → invoice ids."""
    found: dict[str, list[str]] = {}
    for part in chunks(keys):
        query = sa.select(inv.c.supplier_invoice, inv.c.invoice_id).where(
            inv.c.mapping == mapping, inv.c.supplier_invoice.in_(part)
        )
        for key, invoice_id in conn.execute(query):
            found.setdefault(key, []).append(invoice_id)
    return found


def acked_sources(conn: Connection, mapping: str, keys: list[str]) -> dict[str, str]:
    """The source hash of each of ``keys`` that is ``sent`` and whose last staged payload is the
    acknowledged one (``payload_hash = acked_hash``): invoice id → the hash of the source rows
    (and mapping) that payload came from. Rows without a source hash are left out.

    Only the key is a condition in SQL (a primary-key lookup per key): with ``state = 'sent'``
    there too, SQLite chose the (mapping, state) index and scanned every sent invoice per query.
    The state and the hashes are compared in the select list instead (a ``CASE`` per row found),
    so only two short texts per key cross to Python, fetched at once as plain tuples. The
    statement goes to the driver as text with one placeholder per key: SQLAlchemy's expanding
    ``IN`` coerced and rendered every key again (about half of a rerun's lookup time)."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: dict[str, str | None] = {}
    for part in chunks(keys, _LOOKUP_KEYS):
        statement = _ACKED_SOURCES.format(mark=mark, keys=", ".join([mark] * len(part)))
        found.update(conn.exec_driver_sql(statement, (mapping, *part)).tuples().all())
    return {key: hashed for key, hashed in found.items() if hashed is not None}
