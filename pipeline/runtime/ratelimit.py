"""The adaptive rate limiter in front of AppZen: even pacing, FIFO fairness, AIMD on 429s.

Pacing (virtual scheduling)
    Every send gets a theoretical slot ``S``; consecutive slots are exactly ``1 / rate`` apart, so
    the long-run rate never exceeds the current rate. A caller that finds the next slot in the
    future sleeps until it. A caller that arrives after its slot (the event loop woke it late, or
    every worker was busy) sends at once and the schedule keeps its slot, so a small lateness is
    made up by the next sends: up to 5 ms (timer granularity; without it, rates of several
    hundred per second lose a tenth or more to late wake-ups), or ``burst - 1`` intervals if
    that is longer. More lateness restarts the schedule at now. That catch-up is the only burst
    there is: after an idle spell the first send goes at once and the next one ``1 / rate``
    later, an idle limiter never banks a burst.

Fairness and waiting
    Callers queue in arrival order. Only the head of the queue sleeps on the clock; the others wait
    on their own future until the head has sent and hands over. One sleep per send (plus one per
    rate change or pause that moves a slot later), no polling. A cancelled waiter leaves the queue
    and hands over if it was the head. Rate changes and pauses apply to every send not yet made:
    the head checks the schedule again when it wakes.

Adaptation (AIMD)
    :meth:`AdaptiveRateLimiter.on_throttled` (a 429) multiplies the rate by ``decrease`` (0.7), at
    most once per ``cooldown`` seconds, because the requests already in flight when the quota ran
    out come back as a burst of 429s that is one signal. A ``Retry-After`` pauses every send until
    now + retry_after (capped at ``max_pause``); the schedule restarts after the pause without a
    burst. :meth:`~AdaptiveRateLimiter.on_success` adds ``increase`` requests/s (default 5% of
    ``max_rate``) for every second of successes, up to ``max_rate`` (the start rate unless given):
    gaps without traffic count for at most one second, time inside a cooldown not at all. From 0.9x
    the rate at which the last 429 came, the increase runs at a fifth of its speed, so the limiter
    lingers just under the quota it found instead of hitting it again at once (fewer 429s and
    Retry-After pauses); past 1.1x that rate it forgets it (the quota has grown). A limiter
    given a measured ``quota`` (a remembered rate) that draws a 429 while probing above it
    steps back to 0.97x that quota, not x0.7: the quota is known, the 429 only says it has not
    grown.

    From the second decrease on, the rate AppZen answered since the last one is a measure of
    the quota: both decreases came when the quota was used up, so what it let through between
    them is what it grants per second (for a token bucket exactly, its burst included). The
    decrease then goes to 0.97x that answered rate (at least half the rate, at most 0.97x it:
    a window that held an idle spell measures low) instead of x0.7, and additive increase above
    the measured rate runs at a twentieth of its speed (:data:`MEASURED_PROBE`), as above a
    remembered quota; past 1.1x it the measure is dropped. At twice the quota the first x0.7
    still lands above it; the second decrease lands under it and stays there instead of
    probing back into a third, fourth, ... burst of 429s every few seconds.

    Simulated against a server token bucket of ``capacity = quota``
    (tests/runtime/test_ratelimit.py, 16 workers, 20-160 ms round trips): started at the quota,
    100% of it with no 429; started at twice the quota, ~100% of the quota with < 1% of requests
    answered 429 (0.3% over 60 s when every 429 carries ``Retry-After: 1``, as the sandbox's do;
    0.6% before the answered-rate step).

Sharing a limit across processes
    :class:`RateLimiter` is the whole surface the poster uses: ``acquire()`` is the only way in.
    A variant backed by a Prefect global concurrency limit (``rate_limit(name, occupy=N,
    strict=True)`` per block of N permits, paced locally) implements the same protocol.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Protocol

from pipeline.runtime.clock import Clock
from pipeline.runtime.http import MAX_RETRY_AFTER

_EARLY = 1e-6
"""Seconds a clock may wake a sleeper early and still count as on time."""

_CATCH_UP = 0.005
"""Seconds of lateness always made up: about the event loop's timer granularity (epoll: 1 ms)."""

_PROBE_FROM = 0.9
_PROBE_SPEED = 0.2
_FORGET_ABOVE = 1.1
"""Near the rate of the last 429 (from 0.9x), additive increase runs at a fifth of its speed;
past 1.1x that rate the memory is dropped."""

_UNDER_QUOTA = 0.97
"""A probe past a measured quota that draws a 429 falls back to this share of that quota."""

WINDOW_MIN_S = 1.0
WINDOW_MIN = 20
"""Seconds and successes between two decreases before the successes per second between them
count as a measure of the quota (:meth:`AdaptiveRateLimiter.on_throttled`)."""

_WINDOW_FLOOR = 0.5
"""A decrease to a measured quota goes no lower than this share of the rate (a window that
held an idle spell measures low)."""

MEASURED_PROBE = 0.05
"""Above a quota measured between two decreases, additive increase runs at a twentieth of its
speed (as above a remembered quota: :data:`pipeline.staging.ratememory.PROBE_SPEED`)."""

ADMITTED_MIN_S = 5.0
ADMITTED_MIN = 50
"""Seconds and successes after the first 429 before :attr:`AdaptiveRateLimiter.admitted_rate`
counts as a measure of the quota."""

MAX_PAUSE = MAX_RETRY_AFTER
"""Longest Retry-After pause honoured (seconds): the one cap of :mod:`pipeline.runtime.http`."""


class RateLimiter(Protocol):
    """What the poster needs from a rate limiter."""

    @property
    def current_rate(self) -> float:
        """Requests per second allowed right now (for progress display)."""
        ...

    async def acquire(self) -> None:
        """Wait until the caller may send one request."""
        ...

    def on_success(self) -> None:
        """A request was answered without throttling."""
        ...

    def on_throttled(self, retry_after: float | None) -> None:
        """A request was answered 429; ``retry_after`` seconds if the server said so."""
        ...


class AdaptiveRateLimiter:
    """Paces sends at ``current_rate`` requests/s and adapts the rate to 429 answers (AIMD)."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock,
        min_rate: float = 0.5,
        max_rate: float | None = None,
        burst: float | None = None,
        decrease: float = 0.7,
        increase: float | None = None,
        cooldown: float = 1.0,
        max_pause: float = MAX_PAUSE,
        throttled_at: float | None = None,
        probe_speed: float = _PROBE_SPEED,
        quota: float | None = None,
    ) -> None:
        """``rate`` is the start rate (requests/s); ``increase`` defaults to 5% of ``max_rate``
        per second of success; ``burst`` (≥ 1, default 1) bounds catch-up after late sends;
        ``min_rate`` is lowered to ``rate`` when the start rate is below it. ``throttled_at`` is
        the rate a 429 came at before (a remembered quota, :attr:`throttled_at` of an earlier
        run): the limiter lingers under it as if it had found it itself. ``probe_speed`` is the
        share of ``increase`` used from 0.9x that rate on (0.2: a fifth). ``quota`` is the
        quota measured before (a remembered rate): a 429 that comes above it, while probing,
        drops the rate to just under it (:data:`_UNDER_QUOTA`) instead of by ``decrease``, once;
        the 429s after that decrease as usual (the quota has fallen)."""
        self._max_rate = float(rate if max_rate is None else max_rate)
        min_rate = min(min_rate, rate)
        _check(
            rate,
            min_rate=min_rate,
            max_rate=self._max_rate,
            decrease=decrease,
            cooldown=cooldown,
            pause=max_pause,
        )
        self._burst = 1.0 if burst is None else float(burst)
        self._increase = 0.05 * self._max_rate if increase is None else float(increase)
        if self._burst < 1 or self._increase < 0:
            raise ValueError(
                f"AdaptiveRateLimiter: burst={burst} must be ≥ 1 and increase={increase} ≥ 0"
            )
        self._rate = min(max(float(rate), min_rate), self._max_rate)
        self._min_rate = float(min_rate)
        self._decrease = float(decrease)
        self._cooldown = float(cooldown)
        self._max_pause = float(max_pause)
        self._clock = clock
        self._last_slot = -math.inf
        self._paused_until = -math.inf
        self._last_decrease = -math.inf
        self._last_increase = -math.inf
        self._throttled_at = math.inf if throttled_at is None else float(throttled_at)
        self._probe_speed = float(probe_speed)
        self._quota = math.inf if quota is None else float(quota)
        self._first_throttle = math.inf
        self._last_success = -math.inf
        self._admitted = 0
        self._window_start = math.inf
        self._window_admitted = 0
        self._measured = math.inf
        self._queue: deque[asyncio.Future[None]] = deque()

    @property
    def current_rate(self) -> float:
        """Requests per second allowed right now."""
        return self._rate

    @property
    def max_rate(self) -> float:
        """The ceiling additive increase climbs back to."""
        return self._max_rate

    @property
    def throttled_at(self) -> float | None:
        """The rate the last 429 came at (what this limiter believes the quota is), or None
        when none came or the rate has since grown well past it."""
        return None if math.isinf(self._throttled_at) else self._throttled_at

    @property
    def throttled(self) -> bool:
        """True once a 429 came to this limiter."""
        return not math.isinf(self._first_throttle)

    @property
    def admitted_rate(self) -> float | None:
        """Successes per second since this limiter's first 429: what AppZen let through while
        the limiter pressed against its quota (the quota, measured). None before a 429, or over
        less than :data:`ADMITTED_MIN_S` seconds or :data:`ADMITTED_MIN` successes."""
        span = self._last_success - self._first_throttle
        if span < ADMITTED_MIN_S or self._admitted < ADMITTED_MIN:
            return None
        return self._admitted / span

    @property
    def paused_until(self) -> float | None:
        """Clock time before which nothing is sent (a Retry-After), or None when not paused."""
        return self._paused_until if self._paused_until > self._clock.monotonic() else None

    @property
    def waiting(self) -> int:
        """Callers queued in :meth:`acquire`."""
        return len(self._queue)

    async def acquire(self) -> None:
        """Wait, in arrival order, until the caller may send one request."""
        if not self._queue and self._take_if_due():
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(turn)
        try:
            if self._queue[0] is not turn:
                await turn
            while not self._take_if_due():
                now = self._clock.monotonic()
                await self._clock.sleep(self._next_slot(now) - now)
        finally:
            self._leave(turn)

    def on_success(self) -> None:
        """Additive increase: ``increase`` requests/s per second of success, up to ``max_rate``
        (a fifth of that near the rate the last 429 came at)."""
        now = self._clock.monotonic()
        if now >= self._first_throttle:
            self._admitted += 1
            self._last_success = now
        if now >= self._window_start:
            self._window_admitted += 1
        since = max(self._last_increase, self._last_decrease + self._cooldown)
        self._last_increase = now
        if now <= since:
            return
        if self._rate > _FORGET_ABOVE * self._throttled_at:
            self._throttled_at = math.inf  # well past the old limit: the quota has grown
        if self._rate > _FORGET_ABOVE * self._measured:
            self._measured = math.inf
        near = self._rate >= _PROBE_FROM * self._throttled_at
        speed = self._probe_speed if near else 1.0
        if self._rate >= self._measured:
            speed = min(speed, MEASURED_PROBE)
        step = self._increase * speed * min(now - since, 1.0)
        self._rate = min(self._max_rate, self._rate + step)

    def on_throttled(self, retry_after: float | None = None) -> None:
        """Multiplicative decrease (once per cooldown) and a pause for ``retry_after`` seconds."""
        now = self._clock.monotonic()
        self._first_throttle = min(self._first_throttle, now)
        if retry_after is not None and retry_after > 0:
            pause_end = now + min(retry_after, self._max_pause)
            self._paused_until = max(self._paused_until, pause_end)
        self._last_increase = now
        if now - self._last_decrease >= self._cooldown:
            measured = self._window_rate(now)
            self._window_start, self._window_admitted = now, 0
            self._throttled_at = self._rate
            lowered = self._rate * self._decrease
            if self._rate > self._quota:  # a probe past the measured quota: back just under it
                lowered = max(lowered, _UNDER_QUOTA * self._quota)
            elif measured is not None:  # AppZen's answered rate since the last decrease
                lowered = max(_UNDER_QUOTA * measured, _WINDOW_FLOOR * self._rate)
                lowered = min(lowered, _UNDER_QUOTA * self._rate)
                self._measured = max(measured, lowered)
            self._quota = math.inf  # once: a 429 below it means the quota has fallen
            self._rate = max(self._min_rate, lowered)
            self._last_decrease = now

    def _window_rate(self, now: float) -> float | None:
        """Successes per second since the last decrease (None before the first, or over less
        than :data:`WINDOW_MIN_S` seconds or :data:`WINDOW_MIN` successes)."""
        span = now - self._window_start
        if span < WINDOW_MIN_S or self._window_admitted < WINDOW_MIN:
            return None
        return self._window_admitted / span

    def _next_slot(self, now: float) -> float:
        """The theoretical slot of the next send: on schedule, or now when too late to catch up."""
        slot = max(self._last_slot + 1.0 / self._rate, self._paused_until)
        if now - slot > max((self._burst - 1.0) / self._rate, _CATCH_UP):
            return max(now, self._paused_until)
        return slot

    def _take_if_due(self) -> bool:
        """Claim the next slot if it is due; the caller then sends at once."""
        now = self._clock.monotonic()
        slot = self._next_slot(now)
        if slot - now > _EARLY:
            return False
        self._last_slot = slot
        return True

    def _leave(self, turn: asyncio.Future[None]) -> None:
        """Leave the queue; when the head leaves (sent or cancelled), wake the next one."""
        was_head = bool(self._queue) and self._queue[0] is turn
        self._queue.remove(turn)
        if was_head and self._queue and not self._queue[0].done():
            self._queue[0].set_result(None)


def _check(
    rate: float,
    *,
    min_rate: float,
    max_rate: float,
    decrease: float,
    cooldown: float,
    pause: float,
) -> None:
    """Reject settings the limiter cannot work with; the message names the argument."""
    problems = []
    if not (math.isfinite(rate) and rate > 0):
        problems.append(f"rate={rate} must be a finite number > 0 (requests per second)")
    if not (0 < min_rate <= max_rate and math.isfinite(max_rate)):
        problems.append(f"need 0 < min_rate ({min_rate}) ≤ max_rate ({max_rate}) < inf")
    if not 0 < decrease < 1:
        problems.append(f"decrease={decrease} must be between 0 and 1 (e.g. 0.7)")
    if cooldown < 0 or pause < 0:
        problems.append(f"cooldown={cooldown} and max_pause={pause} must be ≥ 0 seconds")
    if problems:
        raise ValueError("AdaptiveRateLimiter: " + "; ".join(problems))
