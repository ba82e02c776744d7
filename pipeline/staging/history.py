"""Run records and the RowFailures of each run, with when each source key first failed a rule."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.failures import RowFailure
from pipeline.redact import scrub, scrub_optional
from pipeline.staging.claims import chunks, dump_json
from pipeline.staging.errors import StagingTerminalError
from pipeline.staging.records import RunRecord, RunStatus, StoredFailure
from pipeline.staging.tables import KEY_CHARS, failures, runs

FINAL_STATUSES: tuple[RunStatus, ...] = (
    "succeeded",
    "partial",
    "failed",
    "interrupted",
    "cancelled",
)
"""What a run's own process may close it as (``crashed`` is written by another: owners.py)."""


def start_run(
    conn: Connection,
    *,
    flow: str,
    mapping: str,
    parameters: dict[str, Any],
    historical: bool,
    now: datetime,
    parent_run_id: int | None = None,
    owner: dict[str, object] | None = None,
) -> int:
    """Insert a ``running`` run (started under ``parent_run_id``, if any; ``owner``: its owner
    columns, :func:`pipeline.staging.owners.owner_columns`); its id."""
    result = conn.execute(
        sa.insert(runs).values(
            flow=flow,
            mapping=mapping,
            parameters=scrub(dump_json(parameters) or "{}"),
            historical=historical,
            started_at=now,
            status="running",
            parent_run_id=parent_run_id,
            **(owner or {}),
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def finish_run(
    conn: Connection,
    *,
    run_id: int,
    status: RunStatus,
    counts: dict[str, int],
    watermark: str | None,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Close a running run with its status, counts, ``reason`` and (for a successful run)
    watermark. A run another process marked ``crashed`` (its heartbeat had stopped, yet it
    lived) is closed too: its own word is the truth."""
    if status not in FINAL_STATUSES:
        raise ValueError(f"finish_run: status must be one of {FINAL_STATUSES}, not {status!r}")
    stmt = (
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.status.in_(("running", "crashed")))
        .values(
            status=status,
            finished_at=now,
            counts=dump_json(counts),
            watermark=watermark,
            reason=reason,
            lease_until=None,
        )
    )
    if conn.execute(stmt).rowcount != 1:
        found = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_id)).scalar()
        state = "does not exist" if found is None else f"is already {found}"
        raise StagingTerminalError(f"finish_run: run {run_id} {state}; a run is finished once")


def last_watermark(conn: Connection, mapping: str, flow: str | None = None) -> str | None:
    """The watermark of the latest succeeded (or partial: it stops before the invoices it
    skipped) run of ``mapping`` that recorded one (of ``flow`` only, when given: a status read
    keeps its own watermark beside the sync's)."""
    query = (
        sa.select(runs.c.watermark)
        .where(
            runs.c.mapping == mapping,
            runs.c.status.in_(("succeeded", "partial")),
            runs.c.watermark.is_not(None),
        )
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    if flow is not None:
        query = query.where(runs.c.flow == flow)
    return conn.execute(query).scalar()


def list_runs(conn: Connection, limit: int) -> list[RunRecord]:
    """The latest ``limit`` runs, newest first."""
    query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
    return [_run(row) for row in conn.execute(query)]


def runs_of_parent(conn: Connection, parent_id: int) -> list[RunRecord]:
    """The runs started under run ``parent_id`` (a backfill's partitions), oldest first."""
    query = sa.select(runs).where(runs.c.parent_run_id == parent_id).order_by(runs.c.id)
    return [_run(row) for row in conn.execute(query)]


def get_run(conn: Connection, run_id: int) -> RunRecord | None:
    """One run, or ``None``."""
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    return None if row is None else _run(row)


def _run(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(
        id=int(row.id),
        flow=row.flow,
        mapping=row.mapping,
        parameters=json.loads(row.parameters),
        historical=bool(row.historical),
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        counts=json.loads(row.counts) if row.counts else {},
        watermark=row.watermark,
        parent_run_id=None if row.parent_run_id is None else int(row.parent_run_id),
        host=row.host,
        pid=row.pid,
        heartbeat_at=row.heartbeat_at,
        reason=row.reason,
    )


def record_failures(
    conn: Connection, run_id: int, mapping: str, batch: Sequence[RowFailure], now: datetime
) -> None:
    """Store a batch of RowFailures (their texts scrubbed of secrets); first seen = the key's
    earliest failure of that rule."""
    if not batch:
        return
    earliest = _first_seen(conn, mapping, batch)
    rows = [_failure_row(run_id, mapping, failure, earliest, now) for failure in batch]
    conn.execute(sa.insert(failures), rows)


def _key(failure: RowFailure) -> str | None:
    key = failure.source_key
    return key[:KEY_CHARS] if key is not None else None


def _first_seen(
    conn: Connection, mapping: str, batch: Sequence[RowFailure]
) -> dict[tuple[str, str], datetime]:
    keys = sorted({key for key in map(_key, batch) if key is not None})
    rules = sorted({failure.rule[:200] for failure in batch})
    earliest: dict[tuple[str, str], datetime] = {}
    for chunk in chunks(keys):
        query = (
            sa.select(failures.c.source_key, failures.c.rule, sa.func.min(failures.c.first_seen_at))
            .where(
                failures.c.mapping == mapping,
                failures.c.source_key.in_(chunk),
                failures.c.rule.in_(rules),
            )
            .group_by(failures.c.source_key, failures.c.rule)
        )
        for key, rule, first in conn.execute(query):
            earliest[(key, rule)] = first
    return earliest


def _failure_row(
    run_id: int,
    mapping: str,
    failure: RowFailure,
    earliest: dict[tuple[str, str], datetime],
    now: datetime,
) -> dict[str, object]:
    key, rule = _key(failure), failure.rule[:200]
    first = earliest.get((key, rule), now) if key is not None else now
    return {
        "run_id": run_id,
        "mapping": mapping,
        "source_key": key,
        "source_location": scrub_optional(failure.source_location),
        "stage": failure.stage,
        "rule": rule,
        "message": scrub(failure.message),
        "field_path": failure.field_path,
        "source_column": failure.source_column,
        "value": scrub_optional(failure.value),
        "hint": scrub_optional(failure.hint),
        "http_status": failure.http_status,
        "error_code": None if failure.error_code is None else failure.error_code[:64],
        "correlation_id": None if failure.correlation_id is None else failure.correlation_id[:128],
        "attempts": failure.attempts,
        "first_seen_at": min(first, now),
        "last_seen_at": now,
    }


def failures_for_run(conn: Connection, run_id: int) -> list[StoredFailure]:
    """The failures recorded for ``run_id``, in the order they were recorded."""
    query = sa.select(failures).where(failures.c.run_id == run_id).order_by(failures.c.id)
    return [stored_failure(row) for row in conn.execute(query)]


def stored_failure(row: sa.Row[Any]) -> StoredFailure:
    """A row of ``failures`` as a :class:`StoredFailure`."""
    failure = RowFailure(
        source_key=row.source_key,
        source_location=row.source_location,
        stage=row.stage,
        rule=row.rule,
        message=row.message,
        field_path=row.field_path,
        source_column=row.source_column,
        value=row.value,
        hint=row.hint,
        http_status=row.http_status,
        error_code=row.error_code,
        correlation_id=row.correlation_id,
        attempts=row.attempts,
    )
    return StoredFailure(failure, int(row.run_id), row.mapping, row.first_seen_at, row.last_seen_at)


def failed_source_keys(conn: Connection, mapping: str, run_id: int) -> set[str]:
    """Source keys that failed in ``run_id`` for ``mapping`` (any stage; a ``warning`` is no
    failure: that invoice was sent)."""
    query = (
        sa.select(failures.c.source_key)
        .distinct()
        .where(
            failures.c.run_id == run_id,
            failures.c.mapping == mapping,
            failures.c.source_key.is_not(None),
            failures.c.stage != "warning",
        )
    )
    return set(conn.execute(query).scalars())
