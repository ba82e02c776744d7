"""The open-failures ledger: one entry per invoice that failed to reach AppZen (revision 0007).

An entry opens with the invoice's first failure at a delivery stage (extract, mapping, validation,
AppZen's refusal, retries exhausted) and stays ``open`` through every later run it fails in
(``runs_seen``, ``last_seen_at`` and the stage follow; the facts are kept where a later failure
could read less). It closes when the invoice is

* ``delivered``: AppZen acknowledged it, or a run found it unchanged since AppZen's last
  acknowledgement (fixed back to what AppZen has);
* ``gone``: a run that re-read every open failure (retry-failed) no longer found it in the source;
* ``dismissed``: someone closed it with a reason (recorded with who and when). A dismissed
  invoice that keeps failing stays dismissed; delivered, it closes as usual.

A closed entry that fails again opens anew (first seen = that failure).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.failures import DELIVERY_STAGES, FACT_CHARS, InvoiceFacts, RowFailure
from pipeline.redact import scrub
from pipeline.staging.claims import chunks
from pipeline.staging.halves import StoreHalf
from pipeline.staging.history import stored_failure
from pipeline.staging.tables import KEY_CHARS, failure_ledger, failures
from pipeline.staging.upserts import insert_missing

LedgerState = Literal["open", "delivered", "gone", "dismissed"]
Closing = Literal["delivered", "gone"]
LIVE: tuple[LedgerState, ...] = ("open", "dismissed")
ALL_STATES: tuple[LedgerState, ...] = ("open", "dismissed", "delivered", "gone")
"""States whose invoice has not reached AppZen yet."""
FACT_NAMES = tuple(InvoiceFacts.__dataclass_fields__)
_L = failure_ledger


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One invoice of the ledger, with the reasons of the latest run it failed in."""

    mapping: str
    invoice_id: str
    state: LedgerState
    stage: str
    facts: InvoiceFacts
    first_seen_at: datetime
    last_seen_at: datetime
    first_run_id: int
    last_run_id: int
    runs_seen: int
    closed_at: datetime | None
    closed_run_id: int | None
    dismissed_by: str | None
    dismissed_reason: str | None
    reasons: tuple[RowFailure, ...] = ()


def note_failures(
    conn: Connection,
    run_id: int,
    mapping: str,
    batch: Sequence[RowFailure],
    *,
    facts: Mapping[str, InvoiceFacts],
    now: datetime,
) -> None:
    """Open (or keep open) the entry of each invoice of ``batch`` failed at a delivery stage."""
    stages: dict[str, str] = {}
    for failure in batch:
        if failure.source_key and failure.stage in DELIVERY_STAGES:
            stages.setdefault(failure.source_key[:KEY_CHARS], failure.stage)
    if not stages:
        return
    found = _entries(conn, mapping, list(stages))
    missing = sorted(key for key in stages if key not in found)
    if missing:  # another worker may open the same entry now: the second insert does nothing
        opened = [
            _opened(mapping, key, stages[key], facts.get(key) or InvoiceFacts(), (run_id, now))
            for key in missing
        ]
        conn.execute(insert_missing(_L, conn.dialect.name), opened)
        found |= _entries(conn, mapping, missing)
    for key, stage in stages.items():
        known = facts.get(key) or InvoiceFacts()
        row = found[key]
        if row.state in LIVE:
            conn.execute(_update(mapping, key).values(_seen(row, stage, known, run_id, now)))
        else:  # delivered or gone before: failing again opens it anew
            values = _opened(mapping, key, stage, known, (run_id, now))
            conn.execute(_update(mapping, key).values(values))


def _entries(conn: Connection, mapping: str, keys: list[str]) -> dict[str, sa.Row[Any]]:
    found: dict[str, sa.Row[Any]] = {}
    for chunk in chunks(sorted(keys)):
        query = sa.select(_L).where(_L.c.mapping == mapping, _L.c.invoice_id.in_(chunk))
        found.update((row.invoice_id, row) for row in conn.execute(query.with_for_update()))
    return found


def _update(mapping: str, key: str) -> sa.Update:
    return sa.update(_L).where(_L.c.mapping == mapping, _L.c.invoice_id == key)


def _fact_values(facts: InvoiceFacts) -> dict[str, str | None]:
    values = {name: getattr(facts, name) for name in FACT_NAMES}
    return {k: None if v is None else scrub(v)[:FACT_CHARS] for k, v in values.items()}


def _opened(
    mapping: str, key: str, stage: str, facts: InvoiceFacts, seen: tuple[int, datetime]
) -> dict[str, object]:
    run_id, now = seen
    return {
        "mapping": mapping,
        "invoice_id": key,
        "state": "open",
        "stage": stage,
        **_fact_values(facts),
        "first_seen_at": now,
        "last_seen_at": now,
        "first_run_id": run_id,
        "last_run_id": run_id,
        "runs_seen": 1,
        "closed_at": None,
        "closed_run_id": None,
        "dismissed_by": None,
        "dismissed_reason": None,
    }


def _seen(
    row: sa.Row[Any], stage: str, facts: InvoiceFacts, run_id: int, now: datetime
) -> dict[str, object]:
    """A live entry failing again: a new run counts once; a fact read now replaces the old one,
    a fact not read now keeps what an earlier run read."""
    new_facts = {k: v for k, v in _fact_values(facts).items() if v is not None}
    return {
        "stage": stage,
        **new_facts,
        "last_seen_at": now,
        "last_run_id": run_id,
        "runs_seen": row.runs_seen + (0 if int(row.last_run_id) == run_id else 1),
    }


def close(
    conn: Connection,
    mapping: str,
    keys: Collection[str],
    why: Closing,
    *,
    run_id: int | None,
    now: datetime,
) -> int:
    """Close the live entries of ``keys`` as ``why``; how many were closed."""
    closed = 0
    for chunk in chunks(sorted(keys)):
        stmt = (
            sa.update(_L)
            .where(_L.c.mapping == mapping, _L.c.invoice_id.in_(chunk), _L.c.state.in_(LIVE))
            .values(state=why, closed_at=now, closed_run_id=run_id)
        )
        closed += conn.execute(stmt).rowcount
    return closed


@dataclass(frozen=True, slots=True)
class Dismissal:
    """What a dismissal did: the entries it closed, or (then it closed none) the keys it could
    not: unknown, not open (delivered, gone, dismissed), or open under several mappings."""

    dismissed: tuple[tuple[str, str], ...] = ()
    unknown: tuple[str, ...] = ()
    not_open: tuple[tuple[str, str, str], ...] = ()
    ambiguous: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def refused(self) -> bool:
        """True when some key could not be dismissed (and so none was)."""
        return bool(self.unknown or self.not_open or self.ambiguous)


def dismiss(
    conn: Connection,
    mapping: str | None,
    keys: Sequence[str],
    *,
    reason: str,
    by: str,
    now: datetime,
) -> Dismissal:
    """Dismiss the open entries of ``keys`` (of ``mapping``, or of the one mapping holding each),
    all or none: a key that names no open entry, or several, dismisses nothing."""
    found: list[tuple[str, str]] = []
    unknown: list[str] = []
    not_open: list[tuple[str, str, str]] = []
    ambiguous: list[tuple[str, tuple[str, ...]]] = []
    for key in dict.fromkeys(keys):
        query = sa.select(_L.c.mapping, _L.c.state).where(_L.c.invoice_id == key[:KEY_CHARS])
        if mapping is not None:
            query = query.where(_L.c.mapping == mapping)
        rows = conn.execute(query.with_for_update()).all()
        live = [row.mapping for row in rows if row.state == "open"]
        if not rows:
            unknown.append(key)
        elif not live:
            not_open.extend((row.mapping, key, row.state) for row in rows)
        elif len(live) > 1:
            ambiguous.append((key, tuple(sorted(live))))
        else:
            found.append((live[0], key))
    outcome = Dismissal(tuple(found), tuple(unknown), tuple(not_open), tuple(ambiguous))
    if outcome.refused:
        return Dismissal((), outcome.unknown, outcome.not_open, outcome.ambiguous)
    for found_mapping, key in found:
        conn.execute(
            _update(found_mapping, key[:KEY_CHARS]).values(
                state="dismissed",
                closed_at=now,
                closed_run_id=None,
                dismissed_by=scrub(by)[:200],
                dismissed_reason=scrub(reason),
            )
        )
    return outcome


def live_keys(conn: Connection, mapping: str, states: Sequence[LedgerState] = LIVE) -> set[str]:
    """The invoices of ``mapping`` whose entry is in ``states`` (default: not delivered yet)."""
    query = sa.select(_L.c.invoice_id).where(_L.c.mapping == mapping, _L.c.state.in_(states))
    return set(conn.execute(query).scalars())


def entries(
    conn: Connection,
    mapping: str | None = None,
    states: Sequence[LedgerState] = ("open",),
    keys: Collection[str] | None = None,
) -> list[LedgerEntry]:
    """The entries in ``states`` (of ``mapping``, or all; of ``keys`` only, when given), oldest
    first, with the reasons of the latest run each failed in."""
    query = sa.select(_L).where(_L.c.state.in_(states))
    if mapping is not None:
        query = query.where(_L.c.mapping == mapping)
    query = query.order_by(_L.c.first_seen_at, _L.c.mapping, _L.c.invoice_id)
    if keys is None:
        rows = conn.execute(query).all()
    else:
        rows = []
        for chunk in chunks(sorted(keys)):
            rows += conn.execute(query.where(_L.c.invoice_id.in_(chunk))).all()
    reasons = _reasons(conn, rows)
    return [_entry(row, reasons.get((row.mapping, row.invoice_id), ())) for row in rows]


def _reasons(
    conn: Connection, rows: Sequence[sa.Row[Any]]
) -> dict[tuple[str, str], tuple[RowFailure, ...]]:
    by_run: dict[int, list[str]] = {}
    for row in rows:
        by_run.setdefault(int(row.last_run_id), []).append(row.invoice_id)
    found: dict[tuple[str, str], list[RowFailure]] = {}
    for run_id, keys in by_run.items():
        for chunk in chunks(sorted(keys)):
            query = (
                sa.select(failures)
                .where(failures.c.run_id == run_id, failures.c.source_key.in_(chunk))
                .order_by(failures.c.id)
            )
            for failure in conn.execute(query):
                stored = stored_failure(failure)
                if stored.failure.stage in DELIVERY_STAGES:
                    found.setdefault((stored.mapping, failure.source_key), []).append(
                        stored.failure
                    )
    return {key: tuple(value) for key, value in found.items()}


def _entry(row: sa.Row[Any], reasons: tuple[RowFailure, ...]) -> LedgerEntry:
    return LedgerEntry(
        mapping=row.mapping,
        invoice_id=row.invoice_id,
        state=row.state,
        stage=row.stage,
        facts=InvoiceFacts(**{name: getattr(row, name) for name in FACT_NAMES}),
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        first_run_id=int(row.first_run_id),
        last_run_id=int(row.last_run_id),
        runs_seen=int(row.runs_seen),
        closed_at=row.closed_at,
        closed_run_id=None if row.closed_run_id is None else int(row.closed_run_id),
        dismissed_by=row.dismissed_by,
        dismissed_reason=row.dismissed_reason,
        reasons=reasons,
    )


class LedgerStore(StoreHalf):
    """The ledger half of :class:`~pipeline.staging.StagingStore` (its ``ledger`` property):
    every method is one transaction of the store (retried on deadlock)."""

    def close(
        self, mapping: str, keys: Collection[str], why: Closing, run_id: int | None = None
    ) -> int:
        """Close the live entries of ``keys`` as ``delivered`` or ``gone``; how many."""
        if not keys:
            return 0
        now = self._now()
        closed: int = self._write(
            f"closing {len(keys)} ledger entries of {mapping!r} as {why}",
            lambda c: close(c, mapping, keys, why, run_id=run_id, now=now),
        )
        return closed

    def dismiss(
        self, mapping: str | None, keys: Sequence[str], *, reason: str, by: str
    ) -> Dismissal:
        """Dismiss open entries with a reason, recorded with ``by`` and now; see :func:`dismiss`."""
        now = self._now()
        result: Dismissal = self._write(
            f"dismissing {len(keys)} open failures",
            lambda c: dismiss(c, mapping, keys, reason=reason, by=by, now=now),
        )
        return result

    def open_keys(self, mapping: str) -> set[str]:
        """The invoices of ``mapping`` whose entry is open (what retry-failed re-reads)."""
        keys: set[str] = self._read(
            "listing open failures", lambda c: live_keys(c, mapping, ("open",))
        )
        return keys

    def live_keys(self, mapping: str) -> set[str]:
        """The invoices of ``mapping`` not delivered yet: open or dismissed."""
        keys: set[str] = self._read("listing live failures", lambda c: live_keys(c, mapping))
        return keys

    def entries(
        self,
        mapping: str | None = None,
        states: Sequence[LedgerState] = ("open",),
        keys: Collection[str] | None = None,
    ) -> list[LedgerEntry]:
        """The entries in ``states`` (of ``keys``, when given) with their latest reasons."""
        found: list[LedgerEntry] = self._read(
            "reading the open-failures ledger", lambda c: entries(c, mapping, states, keys)
        )
        return found
