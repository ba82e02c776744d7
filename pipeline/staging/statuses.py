"""A status read met with staging: which ERP statuses changed, and recording them for the push.

Status-sync reads the ERP's current statuses in keyed chunks (:mod:`pipeline.status.read`). Each
chunk is compared with staging in a few set-based statements whatever its size: one
``SELECT … IN`` per :data:`~pipeline.staging.claims.CHUNK` keys reads what staging holds (the ERP
status and error it saw last, what AppZen was last told), the comparison is a dictionary lookup
per key, and one executemany ``UPDATE`` writes only the rows whose ERP side changed, setting
``push_pending`` when the new status differs from what was pushed. The push itself is the
existing status-sync path (:mod:`pipeline.status.push`), which walks the pending rows.

Statuses are compared as staging stores them: the status text, and the error as canonical JSON
(:func:`~pipeline.staging.claims.dump_json`), exactly as ``claim_batch`` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.staging.claims import chunks, dump_json
from pipeline.staging.outcomes import push_intent
from pipeline.staging.records import StatusCandidate, StatusRead
from pipeline.staging.tables import invoices as inv

_P = sa.bindparam


@dataclass(slots=True)
class StatusComparison:
    """One chunk of a status read against staging.

    ``changed``: reads whose ERP status or error differs from what staging holds (written by
    :func:`record_status_reads`); ``would_push``: of those and of the rows already pending, the
    acknowledged invoices whose read status differs from what AppZen was last told, as the push
    would send them; ``not_staged``: keys staging has never seen (not synced yet: the sync that
    stages them takes their status from the main source); ``settled``: rows pending a push whose
    read status AppZen already has (the push would send nothing)."""

    changed: list[StatusRead] = field(default_factory=list)
    would_push: list[StatusCandidate] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    not_staged: int = 0


def compare_status_reads(
    conn: Connection, mapping: str, reads: Sequence[StatusRead]
) -> StatusComparison:
    """Compare a chunk of reads with staging (reads only; a key read twice: the last wins)."""
    latest = {read.invoice_id: read for read in reads}
    keys = sorted(latest)
    staged = {
        row.invoice_id: row for chunk in chunks(keys) for row in _staged(conn, mapping, chunk)
    }
    result = StatusComparison()
    for key in keys:
        read, row = latest[key], staged.get(key)
        if row is None:
            result.not_staged += 1
            continue
        error = dump_json(read.error)
        if (read.status, error) != (row.erp_status, row.erp_error):
            result.changed.append(read)
        told = (read.status, error) == (row.pushed_status, row.pushed_error)
        if not told and row.state == "sent" and row.uuid is not None:
            result.would_push.append(_candidate(row, read.status, error))
        elif told and row.push_pending:
            result.settled.append(key)
    return result


def record_status_reads(
    conn: Connection, mapping: str, changed: Sequence[StatusRead], now: datetime
) -> None:
    """Write the changed ERP statuses; ``push_pending`` where they differ from the last push."""
    if not changed:
        return
    status, error = _P("p_status", type_=inv.c.erp_status.type), _P("p_error", type_=sa.Text())
    stmt = (
        sa.update(inv)
        .where(inv.c.mapping == _P("p_mapping"), inv.c.invoice_id == _P("p_id"))
        .values(
            push_pending=sa.or_(
                inv.c.pushed_status.is_distinct_from(status),
                inv.c.pushed_error.is_distinct_from(error),
            ),
            erp_status=status,
            erp_error=error,
            updated_at=_P("p_now"),
        )
    )
    rows = [
        {
            "p_mapping": mapping,
            "p_id": read.invoice_id,
            "p_status": read.status,
            "p_error": dump_json(read.error),
            "p_now": now,
        }
        for read in sorted(changed, key=lambda read: read.invoice_id)
    ]
    conn.execute(stmt, rows)


def _staged(conn: Connection, mapping: str, keys: list[str]) -> Sequence[sa.Row[Any]]:
    query = sa.select(
        inv.c.invoice_id,
        inv.c.state,
        inv.c.uuid,
        inv.c.erp_status,
        inv.c.erp_error,
        inv.c.pushed_status,
        inv.c.pushed_error,
        inv.c.push_in_doubt,
        inv.c.push_pending,
    ).where(inv.c.mapping == mapping, inv.c.invoice_id.in_(keys))
    return conn.execute(query).all()


def _candidate(row: sa.Row[Any], status: str | None, error: str | None) -> StatusCandidate:
    pushed_error = row.pushed_error
    return StatusCandidate(
        row.invoice_id,
        str(row.uuid),
        status,
        None if error is None else dict(json.loads(error)),
        row.pushed_status,
        None if pushed_error is None else dict(json.loads(str(pushed_error))),
        row.push_in_doubt is not None and row.push_in_doubt == push_intent(status, error),
    )
