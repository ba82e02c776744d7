"""The AppZen quota shared by every worker: a Prefect global concurrency limit with slot decay.

Each process paces itself with the pipeline's adaptive limiter and takes permits from the global
limit in blocks of ``BLOCK`` (one ``rate_limit`` call per block: ~6.5 ms each, and single permits
reach only ~55-70 % of the limit; measured in PREFECT-NOTES). Create the limit once per server:
``prefect gcl create appzen-api --limit 20 --slot-decay-per-second 20``. ``strict=True``: a
misspelled name fails loudly instead of meaning "no limit"; :func:`check_limit` says so before
anything is claimed or sent.

The global limit caps the long-run sum, but a fresh limit hands out ``limit`` permits at once, so
the pace of each process is what keeps every second under the quota: a partition of a backfill
paces at the quota divided by the partitions that run at once (:func:`partition_rate`).
"""

from __future__ import annotations

import asyncio

from prefect.client.orchestration import get_client
from prefect.concurrency.asyncio import rate_limit
from prefect.exceptions import ObjectNotFound

from pipeline.errors import ConfigurationError
from pipeline.runtime.clock import Clock
from pipeline.runtime.ratelimit import AdaptiveRateLimiter

BLOCK = 5
DEFAULT_LIMIT = "appzen-api"


class GlobalLimitError(ConfigurationError):
    """The global concurrency limit a flow should share is missing or cannot rate-limit."""


def _create_hint(name: str) -> str:
    return (
        f"create it once per Prefect server: prefect gcl create {name} --limit 20 "
        "--slot-decay-per-second 20 (the AppZen quota), or run with global_limit null (no "
        "shared quota: one worker only)"
    )


async def check_limit(name: str) -> None:
    """Fail fast, before any invoice is claimed, when the limit ``name`` does not exist on the
    Prefect server, is inactive, or has no slot decay (permits would never come back)."""
    async with get_client() as client:
        try:
            limit = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise GlobalLimitError(
                f"global concurrency limit {name!r} does not exist on the Prefect server at "
                f"{client.api_url}: {_create_hint(name)}"
            ) from None
    if not limit.active or limit.slot_decay_per_second <= 0:
        raise GlobalLimitError(
            f"global concurrency limit {name!r} must be active with a slot decay > 0 to share "
            f"a request rate (active={limit.active}, slot decay={limit.slot_decay_per_second}/s):"
            f" prefect gcl update {name} --enable --slot-decay-per-second {limit.limit}"
        )
    if limit.limit < BLOCK:
        raise GlobalLimitError(
            f"global concurrency limit {name!r} allows {limit.limit} slots, fewer than the "
            f"{BLOCK} a process takes at once: prefect gcl update {name} --limit {BLOCK * 4}"
        )


def partition_rate(rate: float, partitions: int, parallel: int | None) -> float:
    """The pace of one partition: ``rate`` shared by the partitions that run at once."""
    at_once = max(1, min(partitions, parallel or partitions))
    return rate / at_once


class GlobalRateLimiter:
    """A :class:`~pipeline.runtime.ratelimit.RateLimiter` that also holds a global-limit permit for
    every request it lets through."""

    def __init__(self, name: str, rate: float, *, clock: Clock, block: int = BLOCK) -> None:
        self.name = name
        self.block = block
        self.local = AdaptiveRateLimiter(rate, clock=clock)
        self._permits = 0
        self._refill = asyncio.Lock()

    @property
    def current_rate(self) -> float:
        """The local pace (the global limit caps the sum over workers)."""
        return self.local.current_rate

    async def acquire(self) -> None:
        """A global permit (taken a block at a time, one caller at a time), then the local
        pace."""
        async with self._refill:
            if self._permits == 0:
                await rate_limit(self.name, occupy=self.block, strict=True)
                self._permits += self.block
            self._permits -= 1
        await self.local.acquire()

    def on_success(self) -> None:
        """Forwarded to the local limiter (additive increase)."""
        self.local.on_success()

    def on_throttled(self, retry_after: float | None) -> None:
        """Forwarded to the local limiter (multiplicative decrease, Retry-After pause)."""
        self.local.on_throttled(retry_after)
