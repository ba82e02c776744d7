"""The AppZen rate a run learned, remembered in staging for the next run on any worker.

A run's :class:`~pipeline.runtime.ratelimit.AdaptiveRateLimiter` finds AppZen's per-second quota
from its 429 answers (AIMD). Without memory every run re-probes from ``APPZEN_RATE_LIMIT`` and
draws the same 429s again; with it, the next run — on this machine or another sharing the staging
database — starts at the quota the last one measured and probes above it only slowly.

The quota is measured, not guessed from the 429s: once the first 429 came, the requests AppZen
let through per second while the limiter pressed against it
(:attr:`~pipeline.runtime.ratelimit.AdaptiveRateLimiter.admitted_rate`). The rate a 429 came at
overstates it (AppZen's bucket lets a burst through first); it is the fallback for a run too
short to measure.

``appzen_rate`` keeps one row per account and endpoint (the fingerprint of the AppZen base URL and
customer id that the daily budget uses, never a key, and ``invoices`` or ``status``: AppZen's
quota is per data type): the quota measured (``quota``), the rate the run
ended at, and when. A run that saw no 429 and was not started from a memory leaves
the row alone; a run whose rate grew well past the remembered quota (the limiter forgot it: the
quota has grown) deletes it, so the next run starts from the configured rate again. Memories
older than :data:`MEMORY_DAYS` are not used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.runtime.clock import Clock
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.settings import Settings
from pipeline.staging.errors import StagingError
from pipeline.staging.tables import appzen_rate as rt
from pipeline.staging.upserts import insert_missing

log = logging.getLogger(__name__)

PROBE_SPEED = 0.05
"""Above a remembered quota the limiter probes at a twentieth of its usual additive increase:
AppZen may have raised the quota, but each probe past it costs a few 429s."""

_PROBE_FROM = 0.9
"""A run too short to measure remembers 0.9x the rate its last 429 came at."""

CATCH_UP_S = 0.1
"""A run started at a remembered quota paces right at it, with no 429 to pull it up: sends that a
busy machine makes late are made up within this many seconds' worth of requests (a burst AppZen's
bucket, a second of its quota, takes at once) instead of lost."""

MEMORY_DAYS = 7
"""A remembered rate older than this is ignored (quotas change; re-probing costs a few 429s)."""

Transact = Callable[[str, Callable[[Connection], object]], object]


@dataclass(frozen=True, slots=True)
class LearnedRate:
    """What a run learned: AppZen lets ``quota`` requests/s through; the run ended pacing at
    ``rate``."""

    quota: float
    rate: float
    updated_at: datetime

    def start_rate(self, configured: float) -> float:
        """Where the next run starts: at the remembered quota, never above what is configured."""
        return min(configured, self.quota)


class RateMemory:
    """The remembered rate of one AppZen account in staging; a limiter made from it and its
    lesson stored when the run ends. Staging errors are logged, never raised: a run that cannot
    remember only re-probes."""

    def __init__(
        self,
        account: str,
        read: Transact,
        write: Transact,
        now: Callable[[], datetime],
    ) -> None:
        self.account = account
        self._read, self._write, self._now = read, write, now
        self.recalled: LearnedRate | None = None
        """The memory the limiter was started from (after :meth:`limiter`)."""

    def recall(self) -> LearnedRate | None:
        """The account's remembered rate, or None (none, too old, or staging unreadable)."""

        def work(conn: Connection) -> LearnedRate | None:
            row = conn.execute(sa.select(rt).where(rt.c.account == self.account)).first()
            if row is None:
                return None
            return LearnedRate(float(row.quota), float(row.rate), row.updated_at)

        try:
            found = self._read("reading the remembered AppZen rate", work)
        except StagingError as error:
            log.warning("the remembered AppZen rate could not be read (starting fresh): %s", error)
            return None
        assert found is None or isinstance(found, LearnedRate)
        if found is None or self._now() - found.updated_at > timedelta(days=MEMORY_DAYS):
            return None
        return found

    def limiter(self, configured: float, clock: Clock) -> AdaptiveRateLimiter:
        """A limiter for ``configured`` requests/s that starts from what earlier runs learned."""
        self.recalled = self.recall()
        if self.recalled is None:
            return AdaptiveRateLimiter(configured, clock=clock)
        start = self.recalled.start_rate(configured)
        log.info(
            "AppZen rate: starting at %.1f/s (the quota measured on %s; configured %.1f/s)",
            start,
            f"{self.recalled.updated_at:%Y-%m-%d %H:%M} UTC",
            configured,
        )
        return AdaptiveRateLimiter(
            start,
            clock=clock,
            max_rate=configured,
            throttled_at=min(self.recalled.quota, configured),
            probe_speed=PROBE_SPEED,
            quota=min(self.recalled.quota, configured),
            burst=max(1.0, CATCH_UP_S * start),
        )

    def remember(self, limiter: AdaptiveRateLimiter) -> None:
        """Store what ``limiter`` knows at the end of a run (see the module docstring)."""
        quota = self._measured(limiter)
        if quota is None and self.recalled is None:
            return  # nothing learned, nothing to forget
        now = self._now()

        def work(conn: Connection) -> None:
            if quota is None:
                conn.execute(sa.delete(rt).where(rt.c.account == self.account))
                return
            values = {"quota": quota, "rate": limiter.current_rate, "updated_at": now}
            insert = insert_missing(rt, conn.dialect.name)
            conn.execute(insert.values(account=self.account, **values))
            conn.execute(sa.update(rt).where(rt.c.account == self.account).values(**values))

        try:
            self._write("remembering the AppZen rate", work)
        except StagingError as error:
            log.warning("the AppZen rate learned by this run was not remembered: %s", error)

    def _measured(self, limiter: AdaptiveRateLimiter) -> float | None:
        """The quota to remember after a run with ``limiter`` (None: forget it).

        No 429 and no memory: nothing known. The rate outgrew the remembered quota (the limiter
        dropped it): the quota grew, forget it. No 429 under a memory: it still holds. 429s
        came: what AppZen let through since the first (:attr:`admitted_rate`); under a memory,
        that measure is taken over a probe and its recovery and so runs low, so the memory is
        kept unless the 429s came below it (the quota shrank: 0.95x the rate of the last one)."""
        if limiter.throttled_at is None:
            return None
        if not limiter.throttled:
            return self.recalled.quota if self.recalled else None
        admitted = limiter.admitted_rate
        if self.recalled is None:
            return admitted if admitted is not None else _PROBE_FROM * limiter.throttled_at
        shrunk = min(self.recalled.quota, 0.95 * limiter.throttled_at)
        return max(admitted or 0.0, shrunk)


def rate_memory(
    settings: Settings, account: str, read: Transact, write: Transact, now: Callable[[], datetime]
) -> RateMemory | None:
    """The memory a run uses, or None when ``APPZEN_REMEMBER_RATE`` is off."""
    return RateMemory(account, read, write, now) if settings.appzen_remember_rate else None
