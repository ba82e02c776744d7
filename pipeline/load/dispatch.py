"""One AppZen call per item, many at once: bounded concurrency, one shared rate limiter, retries.

Posting invoices and pushing statuses both go through :class:`Dispatcher`, so they share the rate
limit, the bound on requests in flight and the retry policy. A fatal answer (401/403, wrong URL)
cancels every call still waiting or in flight: those items get no result and stay pending in
staging, which is safe because AppZen upserts on ``invoice_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pipeline.appzen.errors import AppZenError, FatalError, RowError
from pipeline.load.clock import Clock
from pipeline.load.ratelimit import AdaptiveRateLimiter, RateLimiter
from pipeline.load.retry import RetriesExhausted, RetryEvent, RetryPolicy, call_with_retries
from pipeline.settings import Settings

I = TypeVar("I")  # noqa: E741 - the item type
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallResult(Generic[I, T]):
    """How one item's call ended: ``value`` on success, else ``error`` (row-level or exhausted)."""

    item: I
    attempts: int
    value: T | None = None
    error: RowError | RetriesExhausted | None = None


@dataclass(slots=True)
class DispatchReport(Generic[I, T]):
    """The results of the items that finished, and the fatal error that stopped the rest, if any."""

    results: list[CallResult[I, T]] = field(default_factory=list)
    fatal: FatalError | None = None
    retries: int = 0


class Dispatcher:
    """Runs calls under a shared :class:`RateLimiter`, at most ``concurrency`` in flight."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        policy: RetryPolicy,
        clock: Clock,
        concurrency: int,
        on_result: Callable[[CallResult[object, object]], None] | None = None,
    ) -> None:
        self.limiter = limiter
        self.policy = policy
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._on_result = on_result

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Clock, limiter: RateLimiter | None = None
    ) -> Dispatcher:
        """The dispatcher a run uses: configured rate (adaptive, or ``limiter`` when one is
        shared across processes), concurrency and attempts."""
        return cls(
            limiter=limiter or AdaptiveRateLimiter(settings.appzen_rate_limit, clock=clock),
            policy=RetryPolicy(settings.appzen_retry_attempts),
            clock=clock,
            concurrency=settings.appzen_max_concurrency,
        )

    async def run(
        self, items: Sequence[I], call: Callable[[I], Awaitable[T]]
    ) -> DispatchReport[I, T]:
        """Call ``call(item)`` for every item; return when all finished or a fatal answer came."""
        report: DispatchReport[I, T] = DispatchReport()
        tasks = [asyncio.ensure_future(self._one(item, call, report)) for item in items]
        try:
            await asyncio.gather(*tasks)
        except FatalError as error:
            report.fatal = error
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return report

    async def _one(
        self, item: I, call: Callable[[I], Awaitable[T]], report: DispatchReport[I, T]
    ) -> None:
        failed_attempts = 0

        def count_retry(event: RetryEvent) -> None:
            nonlocal failed_attempts
            failed_attempts = event.attempt
            report.retries += 1

        async with self._slots:
            try:
                done = await call_with_retries(
                    lambda: call(item),
                    self.policy,
                    self.clock,
                    limiter=self.limiter,
                    on_retry=count_retry,
                )
                result: CallResult[I, T] = CallResult(item, done.attempts, value=done.value)
            except RowError as error:
                result = CallResult(item, failed_attempts + 1, error=error)
            except RetriesExhausted as error:
                result = CallResult(item, error.attempts, error=error)
        report.results.append(result)
        if self._on_result is not None:
            self._on_result(result)  # type: ignore[arg-type]


def describe(error: AppZenError | RetriesExhausted) -> AppZenError:
    """The AppZen error behind a result (the last attempt's, for an exhausted retry budget)."""
    return error.last_error if isinstance(error, RetriesExhausted) else error
