"""Virtual time for tests (:class:`FakeClock`): a :class:`~pipeline.runtime.clock.Clock` whose
``sleep`` returns at once, in time order, using only public asyncio API.

``sleep`` puts the caller in a queue ordered by wake-up time (ties in call order) and starts a
driver task on demand. The driver moves time forward to the earliest wake-up once the clock has
been quiet: :data:`QUIET_ROUNDS` turns of the event loop in a row in which nobody started or
stopped sleeping on it. Then it wakes that one sleeper, waits for quiet again (the woken
coroutine runs until it sleeps again, finishes, or waits on something else), and repeats. So
concurrent sleepers wake in time order and each sees exactly the time it asked for; a poll loop
that only yields (``asyncio.sleep(0)``) does not hold time still, because it does not touch the
clock.

What the clock cannot see: work that takes more than :data:`QUIET_ROUNDS` loop turns between
two of its sleeps without touching the clock (a long chain of ``await asyncio.sleep(0)``, or real
network I/O) may find that time moved on meanwhile. Code driven through the clock and in-memory
transports stays far below that bound and runs the same way every time; the tests that also talk
to the sandbox over loopback assert what was sent and answered, never when in virtual time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

QUIET_ROUNDS = 4
"""Loop turns without a sleep starting or ending on the clock before time moves on. A woken
coroutine may yield this many times (and a few more: it runs ahead of the driver in each turn)
before the next sleeper is woken. Every test of this suite passes with 1; each turn the driver
waits costs about 10 µs, and the rate-limit simulations advance time tens of thousands of times."""


class FakeClock:
    """Virtual time: sleeping advances time instantly, concurrent sleepers wake in time order."""

    def __init__(self, start: float = 0.0, *, settle: float = 0.0) -> None:
        self._now = float(start)
        self._settle = settle
        """Real seconds the driver also waits, once the clock is quiet, before moving time on
        (0: none): lets real network I/O between two sleeps (a loopback connect) end first."""
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._events = 0
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
        """Sleep ``seconds`` of virtual time; returns once every earlier sleeper has woken
        (zero or negative: only yield to the event loop, as :func:`asyncio.sleep` does)."""
        self.slept.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        self._events += 1
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive(), name="FakeClock driver")
        try:
            await future
        finally:
            self._events += 1  # woken or cancelled: either way the clock saw it

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
        """Wake sleepers one at a time, earliest first, each time the clock has gone quiet."""
        while self._sleepers:
            await self._quiet()
            if not self._sleepers:
                return
            wake_at, _, future = heapq.heappop(self._sleepers)
            if future.done():  # the sleeper was cancelled
                continue
            self._now = max(self._now, wake_at)
            future.set_result(None)

    async def _quiet(self) -> None:
        """Yield until :data:`QUIET_ROUNDS` loop turns in a row pass with no sleep starting or
        ending (bounded: every sleep that starts waits for this driver to end it)."""
        while True:
            seen, quiet = self._events, 0
            while quiet < QUIET_ROUNDS:
                await asyncio.sleep(0)
                quiet = quiet + 1 if self._events == seen else 0
                seen = self._events
            if not self._settle:
                return
            await asyncio.sleep(self._settle)  # real time: real I/O still out may end now
            if self._events == seen:
                return
