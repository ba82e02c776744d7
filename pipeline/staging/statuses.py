"""A status read met with staging: which ERP statuses changed, and recording them for the push.

Status-sync reads the ERP's current statuses in keyed chunks (:mod:`pipeline.status.read`). Each
chunk is compared with staging in a few set-based statements whatever its size: one index
range scan over the chunk's keys (when the read comes in key order: a status query ordered by its
key), else one ``SELECT … IN`` per :data:`~pipeline.staging.claims.CHUNK` keys, reads what staging
holds (the ERP status and error it saw last, what AppZen was last told), the comparison is a
dictionary lookup per key, and one executemany ``UPDATE`` writes only the rows whose ERP side
changed, setting ``push_pending`` when the new status differs from what was pushed. The push
itself is the existing status-sync path (:mod:`pipeline.status.push`), which walks the pending rows.

On PostgreSQL a status-sync's chunk is compared and recorded in one statement instead
(:func:`refresh_status_reads`): the chunk goes in as one JSON array of ``[key, status, error]``,
joined to staging by primary key (one index range scan when the chunk is in key order, else a
lookup per key), and an ``UPDATE … FROM`` writes the changed rows; only two counts come back:
nothing of the unchanged rows (99 % of a full read) crosses to Python. PostgreSQL compares text
byte for byte (a deterministic collation), as Python does;
MariaDB's collations ignore case and trailing spaces, so there (and on SQLite) the chunk is
compared in Python as above.

Statuses are compared as staging stores them: the status text, and the error as canonical JSON
(:func:`~pipeline.staging.claims.dump_json`), exactly as ``claim_batch`` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.staging.claims import chunks, dump_json
from pipeline.staging.outcomes import push_intent
from pipeline.staging.records import ErpError, StatusCandidate, StatusRead
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


@dataclass(slots=True)
class StatusColumns:
    """A chunk of a status read as three columns: ``keys[i]``'s ERP status and error, the error
    as staging stores it (canonical JSON text, :func:`~pipeline.staging.claims.dump_json`; None:
    no error). A million reads cost three lists, not a million objects; :meth:`reads` gives
    them as :class:`StatusRead` rows where those are needed."""

    keys: list[str] = field(default_factory=list)
    statuses: list[str | None] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, key: str, status: str | None, error: ErpError | None = None) -> None:
        """One more read (``error``: the ERP's error parts, None without one)."""
        self.keys.append(key)
        self.statuses.append(status)
        self.errors.append(dump_json(error))

    def latest(self) -> dict[str, tuple[str | None, str | None]]:
        """(status, error JSON) by key; a key read twice: the last wins."""
        return dict(zip(self.keys, zip(self.statuses, self.errors, strict=True), strict=True))

    def reads(self) -> list[StatusRead]:
        """The reads as :class:`StatusRead` rows (validated: key and status lengths)."""
        return [
            StatusRead(key, status, None if error is None else dict(json.loads(error)))
            for key, status, error in zip(self.keys, self.statuses, self.errors, strict=True)
        ]


@dataclass(frozen=True, slots=True)
class StatusRefresh:
    """What recording one chunk of a status read did: ``changed`` ERP statuses written (pending
    a push where AppZen was told otherwise), ``not_staged`` keys staging has never seen."""

    changed: int
    not_staged: int


def refreshes_in_one_statement(dialect: str) -> bool:
    """Whether :func:`refresh_status_reads` compares and records a chunk in one statement on
    ``dialect`` (PostgreSQL); elsewhere :func:`compare_status_reads`, then
    :func:`record_status_reads`."""
    return dialect == "postgresql"


def refresh_status_reads(
    conn: Connection, mapping: str, reads: StatusColumns, now: datetime
) -> StatusRefresh:
    """Compare a chunk of reads with staging and record the changed ones, in one statement
    (PostgreSQL only: :func:`refreshes_in_one_statement`); the same rows change, with the same
    values, as :func:`compare_status_reads` then :func:`record_status_reads` would write."""
    keys, statuses, errors = reads.keys, reads.statuses, reads.errors
    if not keys:
        return StatusRefresh(0, 0)
    ordered = all(a < b for a, b in pairwise(keys))  # so no key twice either
    if not ordered:
        latest = reads.latest()
        keys = sorted(latest)  # row locks taken in one order
        statuses, errors = [latest[key][0] for key in keys], [latest[key][1] for key in keys]
    # One JSON text, not three arrays: psycopg dumps arrays element by element in Python.
    document = json.dumps(list(zip(keys, statuses, errors, strict=True)), ensure_ascii=False)
    statement = (_REFRESH_RANGE if ordered else _REFRESH_PROBED).bindparams(
        sa.bindparam("reads", document, type_=sa.Text()),
        sa.bindparam("mapping", mapping, type_=sa.Text()),
        sa.bindparam("now", now, type_=inv.c.updated_at.type),
    )
    if not ordered:
        # A lookup per key costs the planner's estimate past JIT's threshold; compiling takes
        # longer than running it.
        conn.exec_driver_sql("SET LOCAL jit = off")
    staged, changed = conn.execute(statement).one()
    return StatusRefresh(changed=int(changed), not_staged=len(keys) - int(staged))


_STAGED_RANGE = f"""
    SELECT read.invoice_id, read.status, read.error,
           (i.erp_status IS DISTINCT FROM read.status
            OR i.erp_error IS DISTINCT FROM read.error) AS changed
    FROM read JOIN {inv.name} i ON i.invoice_id = read.invoice_id
    WHERE i.mapping = :mapping
      AND i.invoice_id BETWEEN (SELECT min(invoice_id) FROM read)
                           AND (SELECT max(invoice_id) FROM read)
"""  # noqa: S608 - the table name is this module's own
"""Staging's rows of a chunk in key order: one index range scan (its bounds in the database's
own collation, so the range holds every key of the chunk in any case)."""
_STAGED_PROBED = f"""
    SELECT read.invoice_id, read.status, read.error,
           (i.erp_status IS DISTINCT FROM read.status
            OR i.erp_error IS DISTINCT FROM read.error) AS changed
    FROM read CROSS JOIN LATERAL (
        SELECT erp_status, erp_error FROM {inv.name}
        WHERE mapping = :mapping AND invoice_id = read.invoice_id LIMIT 1
    ) i
"""  # noqa: S608 - the table name is this module's own
"""Staging's rows of an unordered chunk: one primary-key lookup per key (the chunk's key range
may span the whole table)."""
_REFRESH = f"""
WITH read AS (
    SELECT r ->> 0 AS invoice_id, r ->> 1 AS status, r ->> 2 AS error
    FROM json_array_elements(CAST(:reads AS json)) AS r
), staged AS ({{staged}}), written AS (
    UPDATE {inv.name} i
    SET push_pending = (i.pushed_status IS DISTINCT FROM staged.status
                        OR i.pushed_error IS DISTINCT FROM staged.error),
        erp_status = staged.status,
        erp_error = staged.error,
        updated_at = :now
    FROM staged
    WHERE staged.changed AND i.mapping = :mapping AND i.invoice_id = staged.invoice_id
    RETURNING i.invoice_id
)
SELECT (SELECT count(*) FROM staged), (SELECT count(*) FROM written)
"""  # noqa: S608 - the table name is this module's own
_REFRESH_RANGE = sa.text(_REFRESH.format(staged=_STAGED_RANGE))
_REFRESH_PROBED = sa.text(_REFRESH.format(staged=_STAGED_PROBED))


def compare_status_reads(
    conn: Connection, mapping: str, reads: Sequence[StatusRead], *, plan: bool = False
) -> StatusComparison:
    """Compare a chunk of reads with staging (reads only; a key read twice: the last wins).
    Only ``plan`` (a dry run) fills ``would_push`` and ``settled``; a run records ``changed``
    and lets the push find what is pending."""
    latest = {read.invoice_id: read for read in reads}
    keys = sorted(latest)
    staged = _staged_rows(conn, mapping, keys, _COLUMNS if plan else _COLUMNS[:5])
    result = StatusComparison()
    if not plan:
        for key in keys:
            read, row = latest[key], staged.get(key)
            if row is None:
                result.not_staged += 1
            elif (read.status, None if read.error is None else dump_json(read.error)) != row[3:5]:
                result.changed.append(read)
        return result
    for key in keys:
        read, row = latest[key], staged.get(key)
        if row is None:
            result.not_staged += 1
            continue
        _, state, uuid, erp_status, erp_error, pushed_status, pushed_error, _, pending = row
        now = (read.status, None if read.error is None else dump_json(read.error))
        if now != (erp_status, erp_error):
            result.changed.append(read)
        told = now == (pushed_status, pushed_error)
        if not told and state == "sent" and uuid is not None:
            result.would_push.append(_candidate(row, *now))
        elif told and pending:
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


_COLUMNS = (
    inv.c.invoice_id,
    inv.c.state,
    inv.c.uuid,
    inv.c.erp_status,
    inv.c.erp_error,
    inv.c.pushed_status,
    inv.c.pushed_error,
    inv.c.push_in_doubt,
    inv.c.push_pending,
)
RANGE_SLACK = 4
"""A chunk's key range is read whole when it holds at most this many staged rows per key read."""


def _staged_rows(
    conn: Connection, mapping: str, keys: list[str], columns: Sequence[sa.Column[Any]]
) -> dict[str, sa.Row[Any]]:
    """Staging's rows of ``keys`` (sorted): one index range scan over the chunk's key range when
    the range is dense (a status read in key order), then ``IN`` lists for the keys the range
    did not hold (keys never staged, a sparse range cut at its limit, a collation that orders
    the keys otherwise than Python does). Never wrong, only slower when the read is unordered."""
    if not keys:
        return {}
    limit = RANGE_SLACK * len(keys) + 1
    ranged = (
        sa.select(*columns)
        .where(inv.c.mapping == mapping, inv.c.invoice_id.between(keys[0], keys[-1]))
        .limit(limit)
    )
    wanted = set(keys)
    found = {row[0]: row for row in conn.execute(ranged).all() if row[0] in wanted}
    missing = [key for key in keys if key not in found]
    for chunk in chunks(missing):
        query = sa.select(*columns).where(inv.c.mapping == mapping, inv.c.invoice_id.in_(chunk))
        found.update((row[0], row) for row in conn.execute(query).all())
    return found


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
