"""The injectable clock of the load stage: real time for runs, virtual time (FakeClock) for tests.

Everything in ``pipeline/load`` that waits or reads the time does it through a :class:`Clock`, so a
test can run an hour of rate limiting or a chain of retries in milliseconds without sleeping.

:class:`FakeClock` keeps virtual time. ``sleep`` registers the sleeper in a queue ordered by wake-up
time (ties in call order) and a driver task, started on demand, advances time to the earliest
wake-up once the event loop has nothing else ready to run, wakes that one sleeper, lets it run
until it blocks again, and repeats. Many concurrent coroutines therefore wake in time order and see
exactly the time they asked for. Virtual time does not wait for real I/O: use it for code whose
waiting goes through the clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

_SETTLE_ROUNDS = 1_000
"""Loop turns the fake clock lets pass before advancing even though work is still ready (a poll
loop that only yields with ``asyncio.sleep(0)`` would otherwise stop virtual time forever)."""

_BLIND_SETTLE_ROUNDS = 32
"""Loop turns to let pass on event loops that do not expose their ready queue."""


class Clock(Protocol):
    """Monotonic time in seconds and a way to wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (the origin is arbitrary)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (zero or negative: just yield to the event loop)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        """Seconds since an arbitrary origin, from :func:`time.monotonic`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time."""
        await asyncio.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()
"""The process-wide real clock."""


class FakeClock:
    """Virtual time for tests: sleeping advances time instantly, sleepers wake in time order."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self.slept: list[float] = []
        """Every duration passed to :meth:`sleep`, in call order (for assertions)."""

    def monotonic(self) -> float:
        """The current virtual time."""
        return self._now

    @property
    def sleeping(self) -> int:
        """How many coroutines are asleep on this clock right now."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time; returns once every earlier sleeper has woken."""
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive(), name="FakeClock driver")
        await future

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by hand and wake every sleeper now due (no loop needed)."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance({seconds}): time only moves forward")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    async def _drive(self) -> None:
        """Wake sleepers one at a time, earliest first, each time the loop has gone idle."""
        while self._sleepers:
            await _settle()
            if not self._sleepers:
                return
            wake_at, _, future = heapq.heappop(self._sleepers)
            if future.done():  # the sleeper was cancelled
                continue
            self._now = max(self._now, wake_at)
            future.set_result(None)


async def _settle() -> None:
    """Yield until nothing else is ready to run on this loop (bounded: see ``_SETTLE_ROUNDS``)."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)  # CPython's queue of ready callbacks
    rounds = _SETTLE_ROUNDS if ready is not None else _BLIND_SETTLE_ROUNDS
    for _ in range(rounds):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return
