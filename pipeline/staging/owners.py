"""Who owns a run and its claims, whether that owner is gone, and the heartbeat that says it lives.

An owner is one run in one process: a token (what its claims carry in ``invoices.claimed_by``),
the host, the process id and the process's start time, recorded on its run (``runs.owner`` …).
While the run lives, a :class:`Heartbeat` thread renews its lease (``runs.lease_until``) every
quarter of the lease. An owner is **gone** (:func:`gone_reason`) when

* its run is no longer ``running`` (it finished, or was found crashed);
* it ran on this machine (the same host id: hostname, boot id and PID namespace) and its process
  no longer exists, is a zombie, or started at another time (the pid was recycled): known at once,
  so a rerun one second after ``kill -9`` takes over its claims;
* its lease ran out: no heartbeat for the lease (60 s by default), whatever machine it ran on.

A gone owner's claims are free to take, and its run is marked ``crashed`` by whoever notices
(:func:`reap_dead_runs`: the next run, ``appzen-etl runs``). Clocks of the machines sharing a
staging database must agree to well within the lease.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.staging.errors import StagingError
from pipeline.staging.tables import invoices as inv
from pipeline.staging.tables import runs

DEFAULT_LEASE_S = 60.0
"""How long an owner's claims and run stay its own without a heartbeat (another machine's view)."""
BEATS_PER_LEASE = 4
_CHUNK = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Owner:
    """One run in one process: the token its claims carry, and where it runs."""

    token: str
    host: str
    host_id: str | None
    pid: int
    process_start: str | None

    @classmethod
    def of_this_process(cls, label: str = "worker") -> Owner:
        """A new owner for a run of this process (``label@host:pid:random``)."""
        host, pid = socket.gethostname(), os.getpid()
        token = f"{label}@{host}:{pid}:{secrets.token_hex(4)}"[:200]
        return cls(token, host[:255], host_id(), pid, process_start(pid))


@dataclass(frozen=True, slots=True)
class OwnerState:
    """A run's owner as staging recorded it, with its status and lease."""

    run_id: int
    status: str
    owner: str | None
    host: str | None
    host_id: str | None
    pid: int | None
    process_start: str | None
    lease_until: datetime | None

    def describe(self) -> str:
        """``run 12 (host db1, pid 345)``: how an operator finds the holder."""
        where = f" (host {self.host}, pid {self.pid})" if self.host is not None else ""
        return f"run {self.run_id}{where}"


def gone_reason(state: OwnerState, now: datetime) -> str | None:
    """Why the owner of ``state`` is gone (see the module docstring), or ``None`` while it lives."""
    if state.status != "running":
        return f"{state.describe()} is {state.status}"
    here = host_id()
    if here is not None and state.host_id == here and state.pid is not None:
        started = process_start(state.pid)
        if started is None:
            return f"its process {state.pid} on {state.host} no longer exists"
        if started != state.process_start:
            return f"its process {state.pid} on {state.host} is gone (the pid was reused)"
    if state.lease_until is not None and state.lease_until <= now:
        return (
            f"no heartbeat from {state.host} pid {state.pid}: its lease ran out at "
            f"{state.lease_until:%Y-%m-%d %H:%M:%S} UTC"
        )
    return None


@functools.cache
def host_id() -> str | None:
    """This machine and PID namespace (hostname, boot id, PID namespace), or ``None`` where
    ``/proc`` does not say (then owners are judged by their lease only)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{socket.gethostname()}/{boot}/{namespace}"[:255]


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or ``None`` when
    there is no such live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in {"Z", "X", "x"}:
        return None
    return fields[19]


# --- staging reads and writes ---------------------------------------------------------------
_COLUMNS = (
    runs.c.id,
    runs.c.status,
    runs.c.owner,
    runs.c.host,
    runs.c.host_id,
    runs.c.pid,
    runs.c.process_start,
    runs.c.lease_until,
)


def _state(row: sa.Row[Any]) -> OwnerState:
    return OwnerState(
        int(row.id),
        row.status,
        row.owner,
        row.host,
        row.host_id,
        row.pid,
        row.process_start,
        row.lease_until,
    )


def owner_columns(owner: Owner, now: datetime, lease_until: datetime) -> dict[str, object]:
    """The ``runs`` columns that record ``owner`` with a first heartbeat at ``now``."""
    return {
        "owner": owner.token,
        "host": owner.host,
        "host_id": owner.host_id,
        "pid": owner.pid,
        "process_start": owner.process_start,
        "heartbeat_at": now,
        "lease_until": lease_until,
    }


def states_of(conn: Connection, tokens: Iterable[str]) -> dict[str, OwnerState]:
    """The recorded owners among ``tokens`` (claim holders), by token; legacy tokens (no run
    records them) are absent."""
    values = sorted(set(tokens))
    found: dict[str, OwnerState] = {}
    for start in range(0, len(values), _CHUNK):
        query = sa.select(*_COLUMNS).where(runs.c.owner.in_(values[start : start + _CHUNK]))
        found.update((row.owner, _state(row)) for row in conn.execute(query))
    return found


def runs_by_id(conn: Connection, run_ids: Iterable[int]) -> dict[int, OwnerState]:
    """The owner states of the runs ``run_ids``, by id."""
    ids = sorted(set(run_ids))
    found: dict[int, OwnerState] = {}
    for start in range(0, len(ids), _CHUNK):
        query = sa.select(*_COLUMNS).where(runs.c.id.in_(ids[start : start + _CHUNK]))
        found.update((int(row.id), _state(row)) for row in conn.execute(query))
    return found


def _dump(counts: dict[str, int]) -> str:
    return json.dumps(counts, sort_keys=True, separators=(",", ":"))


def heartbeat(
    conn: Connection, run_id: int, now: datetime, lease_until: datetime, counts: dict[str, int]
) -> bool:
    """Renew run ``run_id``'s lease and record its counts so far; False when the run is no longer
    ``running`` (another process found it gone and marked it crashed)."""
    stmt = (
        sa.update(runs)
        .where(runs.c.id == run_id, runs.c.status == "running")
        .values(heartbeat_at=now, lease_until=lease_until, counts=_dump(counts))
    )
    return bool(conn.execute(stmt).rowcount == 1)


@dataclass(frozen=True, slots=True)
class Reaped:
    """A run found with its owner gone, now ``crashed``."""

    run_id: int
    reason: str
    left_claimed: int


def reap_dead_runs(conn: Connection, now: datetime) -> list[Reaped]:
    """Mark ``crashed`` every ``running`` run whose owner is gone, with the reason and what it
    left (``left_claimed``: invoices it held, released now); the runs marked."""
    query = sa.select(*_COLUMNS, runs.c.counts).where(
        runs.c.status == "running", runs.c.owner.is_not(None)
    )
    reaped = []
    for row in conn.execute(query).all():
        reason = gone_reason(_state(row), now)
        if reason is not None and _mark_crashed(conn, row, reason, now):
            left = _release(conn, row.owner)
            _add_count(conn, int(row.id), row.counts, left)
            reaped.append(Reaped(int(row.id), reason, left))
    return reaped


def _mark_crashed(conn: Connection, row: sa.Row[Any], reason: str, now: datetime) -> bool:
    """Crashed, unless the owner renewed its lease since it was read (then it lives)."""
    lease = runs.c.lease_until
    same_lease = lease.is_(None) if row.lease_until is None else lease == row.lease_until
    stmt = (
        sa.update(runs)
        .where(runs.c.id == row.id, runs.c.status == "running", same_lease)
        .values(status="crashed", finished_at=now, reason=f"crashed: {reason}")
    )
    return bool(conn.execute(stmt).rowcount == 1)


def _release(conn: Connection, token: str) -> int:
    stmt = sa.update(inv).where(inv.c.claimed_by == token)
    return int(conn.execute(stmt.values(claimed_by=None, claim_expires_at=None)).rowcount)


def _add_count(conn: Connection, run_id: int, counts_json: str | None, left: int) -> None:
    counts = json.loads(counts_json) if counts_json else {}
    counts["left_claimed"] = left
    conn.execute(sa.update(runs).where(runs.c.id == run_id).values(counts=_dump(counts)))


class Heartbeat:
    """A daemon thread renewing a run's lease every quarter of it while the run lives.

    ``beat()`` returns False when staging says the run is no longer running (another process
    found it gone): logged once as an error, and :attr:`lost` is set."""

    def __init__(self, beat: Callable[[], bool], lease_s: float, what: str) -> None:
        self._beat, self._interval, self._what = beat, lease_s / BEATS_PER_LEASE, what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="appzen-heartbeat", daemon=True)
        self.lost = False

    def start(self) -> None:
        """Start beating (the first beat comes after one interval: start_run wrote a lease)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and wait for the thread (at most one beat's time)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                alive = self._beat()
            except StagingError as error:
                log.warning("%s: heartbeat not recorded (retried next beat): %s", self._what, error)
                continue
            if not alive and not self.lost:
                self.lost = True
                log.error(
                    "%s: staging no longer counts this run as running (another process found "
                    "its owner gone); its claims may be taken over",
                    self._what,
                )
