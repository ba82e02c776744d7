"""The injectable clock: monotonic time and sleep, real for runs, virtual in tests.

Everything that waits or reads the time for pacing or retries (the rate limiter, the retry loop,
the dispatcher, the jobs that use them) does it through a :class:`Clock`, so a test can run an
hour of rate limiting or a chain of retries in milliseconds without sleeping: the tests inject a
virtual clock (``tests/support/clock.py``); production code uses :data:`SYSTEM_CLOCK`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


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
