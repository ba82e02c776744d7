"""A backfill's progress per AppZen day, read from staging: what each day sent, what was left
after it and how much of that day's budget the backfill used.

A backfill the daily budget stops resumes the next day as a new run with the same range (a new
parent run of the same mapping, ``start`` and ``end``). Its days are the chain of those parent
runs up to the one asked about, back to (not including) the last one of that range that
completed: each day's runs (the backfill runs started that AppZen day, in
``APPZEN_BUDGET_TIMEZONE``), the invoices their partitions sent (created + updated) and the
backfill's use of that day's budget (``appzen_budget``). What was left after a day is exact once
the backfill completed (what the later days sent); while it has not, it is at least what the
later days sent, and after the last day it is not known without reading the source again
(``backfill --plan``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.staging.budget import BudgetPolicy, _used
from pipeline.staging.history import _run, get_run, runs_of_parent
from pipeline.staging.records import RunRecord
from pipeline.staging.tables import runs

FLOW = "backfill"
DONE = ("succeeded", "partial")


@dataclass(frozen=True, slots=True)
class BackfillDay:
    """Day ``number`` (from 1) of a backfill: the AppZen ``day``, its backfill ``runs``, the
    invoices they ``sent``, the backfill's use of the day's budget (``budget_used`` of
    ``budget_per_day``), and ``left`` after it (exact, or at least that when not ``exact``;
    None: not known)."""

    number: int
    day: str
    runs: tuple[int, ...]
    sent: int
    budget_used: int
    budget_per_day: int
    left: int | None
    exact: bool


def backfill_days(conn: Connection, policy: BudgetPolicy, parent_id: int) -> list[BackfillDay]:
    """The days of the backfill run ``parent_id`` and the runs before it that it resumes."""
    chain = _chain(conn, parent_id)
    by_day: dict[str, list[RunRecord]] = {}
    for record in chain:
        by_day.setdefault(policy.day_of(record.started_at), []).append(record)
    sent = {day: sum(_sent(conn, r.id) for r in records) for day, records in by_day.items()}
    done = bool(chain) and chain[-1].status in DONE
    days: list[BackfillDay] = []
    for number, (day, records) in enumerate(by_day.items(), start=1):
        later = sum(n for d, n in sent.items() if d > day)
        last = number == len(by_day)
        days.append(
            BackfillDay(
                number=number,
                day=day,
                runs=tuple(r.id for r in records),
                sent=sent[day],
                budget_used=_used(conn, policy, day).get(FLOW, 0),
                budget_per_day=policy.per_day_for(FLOW),
                left=later if done or not last else None,
                exact=done,
            )
        )
    return days


def _chain(conn: Connection, parent_id: int) -> list[RunRecord]:
    """The backfill runs of ``parent_id``'s range up to it, after the last that completed."""
    parent = get_run(conn, parent_id)
    if parent is None:
        return []
    query = (
        sa.select(runs)
        .where(runs.c.flow == FLOW, runs.c.parent_run_id.is_(None))
        .where(runs.c.mapping == parent.mapping, runs.c.id < parent_id)
        .order_by(runs.c.id.desc())
    )
    chain = [parent]
    for record in map(_run, conn.execute(query)):
        if not _same_range(record, parent):
            continue
        if record.status in DONE:
            break
        chain.append(record)
    return chain[::-1]


def _same_range(record: RunRecord, parent: RunRecord) -> bool:
    return all(record.parameters.get(k) == parent.parameters.get(k) for k in ("start", "end"))


def _sent(conn: Connection, parent_id: int) -> int:
    return sum(
        int(r.counts.get("created", 0)) + int(r.counts.get("updated", 0))
        for r in runs_of_parent(conn, parent_id)
    )


def day_table(days: Sequence[BackfillDay]) -> list[str]:
    """The days as a markdown table (an artifact's section)."""
    lines = [
        "## Days",
        "",
        "| day | AppZen day | runs | sent | left after it | backfill's budget used |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for day in days:
        runs_text = ", ".join(str(i) for i in day.runs)
        if day.left is None:
            left = "not known yet (backfill --plan)"
        else:
            left = f"{day.left:,}" if day.exact else f"≥ {day.left:,}"
        used = f"{day.budget_used:,} of {day.budget_per_day:,}"
        cells = [str(day.number), day.day, runs_text, f"{day.sent:,}", left, used]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]
