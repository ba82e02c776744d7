"""The AppZen quota shared by every worker: a Prefect global concurrency limit with slot decay.

Each process paces itself with the pipeline's adaptive limiter and takes permits from the global
limit in blocks of ``BLOCK`` (one ``rate_limit`` call per block: ~6.5 ms each, and single permits
reach only ~55-70 % of the limit; measured in PREFECT-NOTES). Create the limit once per server:
``prefect gcl create appzen-api --limit 20 --slot-decay-per-second 20``. ``strict=True``: a
misspelled name fails loudly instead of meaning "no limit".
"""

from __future__ import annotations

from prefect.concurrency.asyncio import rate_limit

from pipeline.load.clock import Clock
from pipeline.load.ratelimit import AdaptiveRateLimiter

BLOCK = 5


class GlobalRateLimiter:
    """A :class:`~pipeline.load.ratelimit.RateLimiter` that also holds a global-limit permit for
    every request it lets through."""

    def __init__(self, name: str, rate: float, *, clock: Clock, block: int = BLOCK) -> None:
        self.name = name
        self.block = block
        self.local = AdaptiveRateLimiter(rate, clock=clock)
        self._permits = 0

    @property
    def current_rate(self) -> float:
        """The local pace (the global limit caps the sum over workers)."""
        return self.local.current_rate

    async def acquire(self) -> None:
        """A global permit (a block at a time), then the local pace."""
        if self._permits == 0:
            await rate_limit(self.name, occupy=self.block, strict=True)
            self._permits = self.block
        self._permits -= 1
        await self.local.acquire()

    def on_success(self) -> None:
        """Forwarded to the local limiter (additive increase)."""
        self.local.on_success()

    def on_throttled(self, retry_after: float | None) -> None:
        """Forwarded to the local limiter (multiplicative decrease, Retry-After pause)."""
        self.local.on_throttled(retry_after)
