"""One AppZen quota shared by every run, worker and flow: permits from a limit outside the process.

AppZen's per-second quota belongs to the account, not to a run. When ``APPZEN_GLOBAL_LIMIT`` names
a shared limit and the process has a way to take permits from it (a :class:`PermitSource` that the
orchestration layer installs with :func:`provide_permits`: the Prefect flows install one backed by
a Prefect global concurrency limit), every dispatcher that calls AppZen
(:meth:`~pipeline.runtime.dispatch.Dispatcher.from_settings`: posts, status pushes, retry-failed,
write-back's searches, verify's reads) paces through a :class:`SharedRateLimiter`: a permit of the
shared limit for every request, then the run's own pace. The CLI's runs share it too when
``APPZEN_GLOBAL_LIMIT`` names a limit (:func:`share_outside_flows`: a CLI backfill beside a
nightly draws from the same quota). With no limit named, or none installed, a run paces alone.

The shared limit caps the sum over every process; the local pace only smooths each process's
sends. A process that shares starts at its share (e.g. a backfill partition at the quota ÷ the
partitions that run at once) and climbs from there up to the configured rate when AppZen answers:
while others run, the shared limit holds it back; alone, it gets the whole quota.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Protocol

from pipeline.runtime.ratelimit import RateLimiter
from pipeline.settings import Settings

BLOCK = 10
"""Permits taken from the shared limit at once, at least (when the limit holds twice as many).
A Prefect ``rate_limit`` call costs ~6.5 ms and single permits reach only ~55-70 % of the limit
(PREFECT-NOTES); every successful take also loses the fraction of a slot that decayed since the
limit's last update (the server floors the slots decayed), about half a slot per take, so fewer,
larger takes give more of it: :func:`block_size`."""

BLOCK_SECONDS = 0.5
"""A process takes up to this many seconds of the limit's decay at once (never more than half
its slots). A model of the server's floor with two workers asking for 4x their share of 50/s
loses ~5 % of it in blocks of 10 (benchmarks row 8c measured 0.93-0.96 at load 7-9), ~2.5 % in
blocks of 25."""


def block_size(limit: int, decay: float) -> int:
    """Permits a process takes at once from a limit of ``limit`` slots that decay at ``decay``
    per second: :data:`BLOCK_SECONDS` of its decay, at least :data:`BLOCK`, at most half its
    slots (so that a block is free again before the whole limit is), and at least 1."""
    return max(1, min(limit // 2, max(BLOCK, round(decay * BLOCK_SECONDS))))


OFF = "none"
"""``APPZEN_GLOBAL_LIMIT=none``: never share, even when a limit of the default name exists."""


class PermitSource(Protocol):
    """Permits of one shared limit."""

    @property
    def name(self) -> str:
        """The shared limit's name (for messages)."""
        ...

    @property
    def block(self) -> int:
        """Permits to take at once (:func:`block_size`)."""
        ...

    async def take(self, count: int) -> None:
        """Wait until ``count`` permits of the shared limit are this process's."""
        ...


PermitProvider = Callable[[str], PermitSource]

_provider: PermitProvider | None = None


def provide_permits(provider: PermitProvider | None) -> None:
    """Install how this process takes permits of a named shared limit (None: it cannot)."""
    global _provider  # noqa: PLW0603 - one per process, installed by the orchestration layer
    _provider = provider


ENTRY_POINTS = "appzen_etl.shared_quota"
"""How a process that no orchestration layer set up (the CLI) shares the quota: an entry point
of this group is a callable ``(Settings) -> Settings`` that resolves ``APPZEN_GLOBAL_LIMIT`` as
the flows do and installs a permit provider. This package registers one in pyproject.toml
(``flows.limits:cli_shared_quota``: the Prefect server of ``PREFECT_API_URL``); none registered,
the process paces alone."""


def share_outside_flows(settings: Settings) -> Settings:
    """``settings`` with the shared limit resolved by the registered entry point
    (:data:`ENTRY_POINTS`) when no permit provider is installed yet (the CLI); unchanged when
    one is (a flow resolved it) or none is registered."""
    if _provider is not None:
        return settings
    for entry in entry_points(group=ENTRY_POINTS):
        resolved = entry.load()(settings)
        if not isinstance(resolved, Settings):
            raise TypeError(f"entry point {entry.value} returned {type(resolved).__name__}")
        return resolved
    return settings


def shared_name(configured: str | None) -> str | None:
    """The shared limit a run takes from: the name configured, None when off or unset."""
    return None if not configured or configured.lower() == OFF else configured


def share(limiter: RateLimiter, global_limit: str | None) -> RateLimiter:
    """``limiter`` taking a permit of the shared limit ``global_limit`` for every request, when
    one is named and this process can take from it; else ``limiter`` itself."""
    name = shared_name(global_limit)
    if name is None or _provider is None or isinstance(limiter, SharedRateLimiter):
        return limiter
    return SharedRateLimiter(_provider(name), limiter)


class SharedRateLimiter:
    """A :class:`~pipeline.runtime.ratelimit.RateLimiter` that holds a permit of a shared limit
    for every request it lets through, then paces locally with ``local``."""

    def __init__(
        self, permits: PermitSource, local: RateLimiter, *, block: int | None = None
    ) -> None:
        self.permits = permits
        self.local = local
        self.block = permits.block if block is None else block
        self._held = 0
        self._refill = asyncio.Lock()

    @property
    def name(self) -> str:
        """The shared limit's name."""
        return self.permits.name

    @property
    def current_rate(self) -> float:
        """The local pace (the shared limit caps the sum over every process)."""
        return self.local.current_rate

    async def acquire(self) -> None:
        """A shared permit (taken a block at a time, one caller at a time), then the local
        pace."""
        async with self._refill:
            if self._held == 0:
                await self.permits.take(self.block)
                self._held += self.block
            self._held -= 1
        await self.local.acquire()

    def on_success(self) -> None:
        """Forwarded to the local limiter (additive increase)."""
        self.local.on_success()

    def on_throttled(self, retry_after: float | None) -> None:
        """Forwarded to the local limiter (multiplicative decrease, Retry-After pause)."""
        self.local.on_throttled(retry_after)
