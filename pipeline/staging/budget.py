"""The daily AppZen request budget in staging: one count per AppZen day, credentials and flow.

Every run, worker and flow that calls AppZen takes requests from ``appzen_budget`` (through
:class:`StagingLedger`, the :class:`~pipeline.runtime.budget.BudgetLedger` of a
:class:`~pipeline.runtime.budget.DailyBudget`). A take is one short transaction: the day's total
row (flow ``*``) is created if missing and locked (``SELECT … FOR UPDATE``; SQLite's
``BEGIN IMMEDIATE`` serializes writers anyway), the grant is computed from the day's rows, and
the total and the flow's row grow by it. So two workers never grant the same request twice; and
the last few blocks of a day go out one request at a time (:data:`TAIL_BLOCKS`), so a worker is
not refused while another holds requests it never uses.

What a flow may use: the budget, less what other flows already used, less what is still kept
for the flows with a reservation (``APPZEN_BUDGET_RESERVE_NIGHTLY`` for ``sync``,
``APPZEN_BUDGET_RESERVE_STATUS_SYNC`` for ``status_sync``) that they have not used yet. The
account is a fingerprint of the AppZen endpoint and customer id (never a key or secret).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.runtime.budget import DailyBudget, Grant
from pipeline.settings import Settings
from pipeline.staging.errors import StagingError
from pipeline.staging.tables import appzen_budget as bud
from pipeline.staging.upserts import insert_missing
from pipeline.summary import RunSummary

log = logging.getLogger(__name__)

TOTAL = "*"
"""The flow of the row holding the day's total."""

TAIL_BLOCKS = 4
"""Once less than this many blocks are left for a flow, requests are granted one at a time, so
no worker holds requests it may not use while another is refused: the day's count reaches the
budget exactly."""

NOTE = "nothing lost: the invoices stay pending"


def account_of(settings: Settings) -> str:
    """The AppZen account in staging: a fingerprint of the endpoint and customer id (never a key
    or secret), shared by the daily budget and the remembered rate."""
    _, customer_id, _ = settings.credentials()
    seed = f"{settings.appzen_base_url}\n{customer_id}".encode()
    return hashlib.sha256(seed).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """The daily budget's settings: ``limit`` requests per day in ``zone``, ``reserves`` per
    flow, counted for ``account`` (a fingerprint of the endpoint and customer id)."""

    limit: int
    zone: str = "UTC"
    account: str = "default"
    reserves: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> BudgetPolicy:
        """The policy ``APPZEN_DAILY_BUDGET``, ``APPZEN_BUDGET_*`` describe."""
        return cls(
            limit=settings.appzen_daily_budget,
            zone=settings.appzen_budget_timezone,
            account=account_of(settings),
            reserves={f: n for f, n in settings.budget_reserves().items() if n > 0},
        )

    def day_of(self, moment: datetime) -> str:
        """The AppZen day of ``moment`` (``YYYY-MM-DD`` in :attr:`zone`)."""
        return moment.astimezone(ZoneInfo(self.zone)).date().isoformat()

    def next_day(self, moment: datetime) -> datetime:
        """Midnight that starts the AppZen day after ``moment``'s, in :attr:`zone`."""
        local = moment.astimezone(ZoneInfo(self.zone))
        tomorrow = local.date() + timedelta(days=1)
        return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=ZoneInfo(self.zone))

    def kept_for_others(self, flow: str, used: Mapping[str, int]) -> int:
        """Requests still kept for the other flows' reservations (what they have not used)."""
        return sum(
            max(0, kept - used.get(other, 0))
            for other, kept in self.reserves.items()
            if other != flow
        )

    def available(self, flow: str, used: Mapping[str, int]) -> int:
        """Requests ``flow`` may still take today, given the day's ``used`` per flow."""
        return self.limit - used.get(TOTAL, 0) - self.kept_for_others(flow, used)

    def per_day_for(self, flow: str) -> int:
        """Requests ``flow`` may use on a day the others use nothing but their reservations."""
        return self.limit - self.kept_for_others(flow, {})

    def spent_message(self, flow: str, used: Mapping[str, int], moment: datetime) -> str:
        """The one line a run stopped by the budget prints."""
        kept = self.kept_for_others(flow, used)
        others = ", ".join(sorted(f for f in self.reserves if f != flow))
        reserved = f", {kept:,} kept for {others}" if kept else ""
        resume = self.next_day(moment)
        return (
            f"AppZen daily budget spent for {flow}: {used.get(TOTAL, 0):,} of {self.limit:,} "
            f"requests used on {self.day_of(moment)} ({self.zone}){reserved}; resumes "
            f"{resume:%Y-%m-%d %H:%M} {self.zone}; {NOTE}, rerun then"
        )


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """One AppZen day's use of the budget, for ``appzen-etl runs``."""

    day: str
    zone: str
    limit: int
    used: int
    by_flow: dict[str, int]
    reserves: dict[str, int]
    resumes_at: str

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "day": self.day,
            "zone": self.zone,
            "limit": self.limit,
            "used": self.used,
            "left": max(0, self.limit - self.used),
            "by_flow": dict(sorted(self.by_flow.items())),
            "reserves": dict(sorted(self.reserves.items())),
            "next_day_starts": self.resumes_at,
        }


@dataclass(frozen=True, slots=True)
class Forecast:
    """How many AppZen days ``requests`` need for one flow: ``left_today`` of today's budget,
    ``per_day`` on each later day (the budget less the other flows' reservations, or what
    ``rate`` requests/s can send in a day if that is less), and when the last one goes out
    (``eta``), assuming the work resumes at each day boundary."""

    requests: int
    left_today: int
    per_day: int
    days: int
    eta: datetime | None
    """None: never (the other flows' reservations take the whole budget)."""
    rate: float

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view."""
        return {
            "requests": self.requests,
            "left_today": self.left_today,
            "per_day": self.per_day,
            "days": self.days,
            "eta": self.eta.isoformat(timespec="seconds") if self.eta else None,
            "rate_per_s": self.rate,
        }


def forecast(
    policy: BudgetPolicy,
    flow: str,
    requests: int,
    *,
    used: Mapping[str, int],
    now: datetime,
    rate: float,
) -> Forecast:
    """The days and the end of ``requests`` of ``flow`` from ``now`` at ``rate`` requests/s, with
    today's ``used`` per flow already counted."""
    by_rate = int(rate * 86_400)
    today_seconds = (policy.next_day(now) - now).total_seconds()
    left_today = max(0, min(policy.available(flow, used), int(rate * today_seconds)))
    per_day = max(0, min(policy.per_day_for(flow), by_rate))
    if requests <= left_today:
        return Forecast(requests, left_today, per_day, 1, now + _at(requests, rate), rate)
    rest = requests - left_today
    if per_day == 0:
        return Forecast(requests, left_today, per_day, 0, None, rate)
    later_days = -(-rest // per_day) if per_day else 0
    last = rest - (later_days - 1) * per_day
    start = policy.next_day(now)
    for _ in range(later_days - 1):
        start = policy.next_day(start)
    days = later_days + (1 if left_today else 0)
    return Forecast(requests, left_today, per_day, days, start + _at(last, rate), rate)


def _at(requests: int, rate: float) -> timedelta:
    return timedelta(seconds=requests / rate)


def used_today(conn: Connection, policy: BudgetPolicy, now: datetime) -> dict[str, int]:
    """Today's requests per flow (``*``: the day's total)."""
    return _used(conn, policy, policy.day_of(now))


def take(conn: Connection, policy: BudgetPolicy, flow: str, wanted: int, now: datetime) -> Grant:
    """Grant up to ``wanted`` requests of today's budget to ``flow`` (0 when spent)."""
    day = policy.day_of(now)
    _lock_total(conn, policy, day, now)
    _ensure(conn, policy, day, flow, now)
    used = _used(conn, policy, day)
    available = policy.available(flow, used)
    if available < TAIL_BLOCKS * wanted:
        wanted = 1  # the day's last requests one at a time: nobody sits on what others need
    granted = max(0, min(wanted, available))
    if granted == 0:
        message = policy.spent_message(flow, used, now)
        return Grant(0, day, message, policy.next_day(now).isoformat())
    _add(conn, policy, day, flow, n=granted, now=now)
    return Grant(granted, day)


def give_back(
    conn: Connection, policy: BudgetPolicy, flow: str, day: str, *, unused: int, now: datetime
) -> None:
    """Return ``unused`` requests granted to ``flow`` on ``day`` (taken, never sent)."""
    _lock_total(conn, policy, day, now)
    _add(conn, policy, day, flow, n=-unused, now=now)


def usage(conn: Connection, policy: BudgetPolicy, now: datetime) -> BudgetUsage:
    """Today's use of the budget."""
    day = policy.day_of(now)
    used = _used(conn, policy, day)
    return BudgetUsage(
        day=day,
        zone=policy.zone,
        limit=policy.limit,
        used=used.pop(TOTAL, 0),
        by_flow={f: n for f, n in used.items() if n},
        reserves=dict(policy.reserves),
        resumes_at=policy.next_day(now).isoformat(),
    )


def _used(conn: Connection, policy: BudgetPolicy, day: str) -> dict[str, int]:
    mine = sa.and_(bud.c.day == day, bud.c.account == policy.account)
    rows = conn.execute(sa.select(bud.c.flow, bud.c.used).where(mine)).all()
    return {row.flow: int(row.used) for row in rows}


def _lock_total(conn: Connection, policy: BudgetPolicy, day: str, now: datetime) -> None:
    """Lock the day's total row (created at 0 by the first take of the day): every take and
    give-back of the day waits here, so the rows are read and written by one at a time. Locked
    before anything else is touched (MySQL: an INSERT IGNORE first would share-lock the row and
    two takes would deadlock upgrading)."""
    mine = sa.and_(bud.c.day == day, bud.c.account == policy.account, bud.c.flow == TOTAL)
    locked = sa.select(bud.c.used).where(mine).with_for_update()
    if conn.execute(locked).first() is None:
        _ensure(conn, policy, day, TOTAL, now)
        conn.execute(locked)


def _add(
    conn: Connection, policy: BudgetPolicy, day: str, flow: str, *, n: int, now: datetime
) -> None:
    for who in (TOTAL, flow):
        conn.execute(
            sa.update(bud)
            .where(bud.c.day == day, bud.c.account == policy.account, bud.c.flow == who)
            .values(used=bud.c.used + n, updated_at=now)
        )


def _ensure(conn: Connection, policy: BudgetPolicy, day: str, flow: str, now: datetime) -> None:
    """Create the day's row of ``flow`` (at 0) if missing, without disturbing an existing one."""
    row = {"day": day, "account": policy.account, "flow": flow, "used": 0, "updated_at": now}
    conn.execute(insert_missing(bud, conn.dialect.name), row)


class StagingLedger:
    """The :class:`~pipeline.runtime.budget.BudgetLedger` of a staging store."""

    def __init__(
        self,
        policy: BudgetPolicy,
        write: Callable[[str, Callable[[Connection], Any]], Any],
        now: Callable[[], datetime],
    ) -> None:
        self.policy = policy
        self._write = write
        self._now = now

    def take(self, flow: str, wanted: int) -> Grant:
        """Grant up to ``wanted`` of today's requests to ``flow``."""
        now = self._now()
        grant: Grant = self._write(
            "taking requests of the AppZen daily budget",
            lambda c: take(c, self.policy, flow, wanted, now),
        )
        return grant

    def give_back(self, flow: str, day: str, unused: int) -> None:
        """Return ``unused`` requests of ``day`` to the budget."""
        now = self._now()
        self._write(
            "returning unused requests to the AppZen daily budget",
            lambda c: give_back(c, self.policy, flow, day, unused=unused, now=now),
        )


def close_budget(budget: DailyBudget | None, summary: RunSummary) -> None:
    """Give back the requests of the AppZen daily budget a run took and did not use, and count
    what it used (``budget_used``). A staging error here is logged: the day's count is then too
    high by at most one block, never too low."""
    if budget is None:
        return
    summary.counts["budget_used"] = budget.used
    if budget.spent:
        summary.counts["budget_spent"] = 1
    try:
        budget.close()
    except StagingError as error:
        log.warning(
            "run %s: unused requests stay counted in today's budget: %s", summary.run_id, error
        )
