"""One remote call per item, many at once: bounded concurrency, one shared rate limiter, retries.

Posting invoices and pushing statuses both go through :class:`Dispatcher`, so they share the rate
limit, the bound on requests in flight and the retry policy (the write-back's calls to the
ERP-side systems use dispatchers of their own). Errors are told apart by the markers of the one
error tree (:mod:`pipeline.errors`). A terminal answer (401/403, wrong URL) stops the dispatcher
for good: every call still waiting or in flight in that :meth:`run` is cancelled, and no call of
any other :meth:`run` on the same dispatcher (the other batch in flight) starts another request.
Those items get no result and stay pending in staging, which is safe because AppZen upserts on
``invoice_id``. A tripped :class:`~pipeline.runtime.breaker.CircuitBreaker` (an outage: nothing
but failures for its window) stops the dispatcher the same way, with
:class:`~pipeline.errors.RemoteUnreachable` as the fatal error. A spent daily budget
(:class:`~pipeline.errors.BudgetSpent`, from a :class:`~pipeline.runtime.budget.BudgetedLimiter`)
stops it more gently: the requests already out finish and are reported, no other starts.
:meth:`Dispatcher.cancel` (SIGTERM, :class:`~pipeline.errors.RunCancelled`) stops it the same
gentle way, and after a grace period abandons what is still out (it stays pending).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pipeline.errors import (
    BudgetSpent,
    ItemError,
    RemoteError,
    RemoteUnreachable,
    RunCancelled,
    TerminalError,
)
from pipeline.runtime.breaker import CircuitBreaker
from pipeline.runtime.budget import BudgetedLimiter, DailyBudget
from pipeline.runtime.clock import Clock
from pipeline.runtime.ratelimit import AdaptiveRateLimiter, RateLimiter
from pipeline.runtime.retry import RetriesExhausted, RetryEvent, RetryPolicy, call_with_retries
from pipeline.runtime.shared import share
from pipeline.settings import Settings

I = TypeVar("I")  # noqa: E741 - the item type
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallResult(Generic[I, T]):
    """How one item's call ended: ``value`` on success, else ``error`` (row-level or exhausted).

    ``in_doubt``: attempts that failed without a clear answer (5xx, timeout, dropped connection),
    each of which the remote may have acted on: copies of the call it may have seen too many."""

    item: I
    attempts: int
    value: T | None = None
    error: RemoteError | RetriesExhausted | None = None
    in_doubt: int = 0


@dataclass(slots=True)
class DispatchReport(Generic[I, T]):
    """The results of the items that finished, and the terminal error that stopped the rest, if
    any."""

    results: list[CallResult[I, T]] = field(default_factory=list)
    fatal: RemoteError | None = None
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
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.limiter = limiter
        self.policy = policy
        self.clock = clock
        self.breaker = breaker
        self._gate = _Gate(limiter)
        self._slots = asyncio.Semaphore(concurrency)
        self._on_result = on_result
        self._running: set[asyncio.Future[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self.fatal: RemoteError | None = None
        """The terminal answer (or outage) that stopped this dispatcher for good; no call starts
        after it."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        clock: Clock,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        *,
        breaker: bool = True,
        budget: DailyBudget | None = None,
    ) -> Dispatcher:
        """The dispatcher a run uses to call AppZen: configured rate (adaptive, or ``limiter``
        when one is shared across processes), concurrency and attempts (or ``policy``, e.g.
        shorter waits), and a circuit breaker of ``APPZEN_OUTAGE_WINDOW`` seconds unless
        ``breaker`` is false (calls that only read, whose failures stop nothing). With a
        ``budget``, every request (each attempt) takes one unit of the day's AppZen budget.
        With ``APPZEN_GLOBAL_LIMIT`` (and a way to take from it), every request also holds a
        permit of that shared limit (:func:`~pipeline.runtime.shared.share`)."""
        local = limiter or AdaptiveRateLimiter(settings.appzen_rate_limit, clock=clock)
        paced = share(local, settings.appzen_global_limit)
        return cls(
            limiter=BudgetedLimiter(paced, budget) if budget is not None else paced,
            policy=policy or RetryPolicy(settings.appzen_retry_attempts),
            clock=clock,
            concurrency=settings.appzen_max_concurrency,
            breaker=CircuitBreaker.for_url(
                "AppZen", settings.appzen_base_url, settings.appzen_outage_window, clock
            )
            if breaker
            else None,
        )

    async def run(
        self, items: Sequence[I], call: Callable[[I], Awaitable[T]]
    ) -> DispatchReport[I, T]:
        """Call ``call(item)`` for every item; return when all finished or a fatal answer came
        (in this run or in another run on this dispatcher: ``report.fatal``)."""
        report: DispatchReport[I, T] = DispatchReport()
        if self.fatal is None:
            tasks = [asyncio.ensure_future(self._one(item, call, report)) for item in items]
            self._running.update(tasks)
            self._watch()
            try:
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                self._running.difference_update(tasks)
                self._unwatch()
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not (
                    self.fatal is not None and isinstance(outcome, asyncio.CancelledError)
                ):
                    raise outcome
        report.fatal = self.fatal
        return report

    def cancel(self, error: RunCancelled, grace_s: float) -> None:
        """Stop gently for ``error``: no request starts from now on (a call waiting for its
        turn or between retries gets no result and stays pending), the requests already out
        finish; those still out after ``grace_s`` seconds are abandoned (cancelled) too."""
        if self.fatal is None:
            self.fatal = error
        self._gate.closed = error
        asyncio.get_running_loop().call_later(grace_s, self._stop, error)

    def _watch(self) -> None:
        """Start the breaker's watchdog while calls run: it trips the breaker when requests hang
        (no failure comes back to tell it)."""
        if self.breaker is not None and (self._watchdog is None or self._watchdog.done()):
            self._watchdog = asyncio.ensure_future(self._watch_hangs(self.breaker))

    def _unwatch(self) -> None:
        if not self._running and self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def _watch_hangs(self, breaker: CircuitBreaker) -> None:
        every = min(1.0, breaker.window / 10)
        while self._running and self.fatal is None:
            await asyncio.sleep(every)  # real time: hanging requests wait on the network
            try:
                breaker.check()
            except RemoteUnreachable as outage:
                self._stop(outage)

    def _stop(self, error: RemoteError) -> None:
        """Remember the first fatal answer and cancel every other call of every run."""
        if self.fatal is None:
            self.fatal = error
        current = asyncio.current_task()
        for task in list(self._running):
            if task is not current:
                task.cancel()

    async def _one(
        self, item: I, call: Callable[[I], Awaitable[T]], report: DispatchReport[I, T]
    ) -> None:
        failed_attempts = 0
        in_doubt = 0

        def count_retry(event: RetryEvent) -> None:
            nonlocal failed_attempts, in_doubt
            failed_attempts = event.attempt
            in_doubt += _unclear(event.error)
            report.retries += 1

        async with self._slots:
            try:
                done = await call_with_retries(
                    lambda: call(item),
                    self.policy,
                    self.clock,
                    limiter=self._gate,
                    on_retry=count_retry,
                    breaker=self.breaker,
                )
                result: CallResult[I, T] = CallResult(
                    item, done.attempts, value=done.value, in_doubt=in_doubt
                )
            except RetriesExhausted as error:
                doubt = in_doubt + _unclear(error.last_error)
                result = CallResult(item, error.attempts, error=error, in_doubt=doubt)
            except (BudgetSpent, RunCancelled) as spent:
                self.fatal = self.fatal or spent  # no new call; those out finish
                return
            except RemoteError as error:
                if isinstance(error, TerminalError | RemoteUnreachable):
                    self._stop(error)
                    return
                if not isinstance(error, ItemError):
                    raise  # no marker: not this loop's to decide
                result = CallResult(item, failed_attempts + 1, error=error, in_doubt=in_doubt)
        report.results.append(result)
        if self._on_result is not None:
            self._on_result(result)  # type: ignore[arg-type]


class _Gate:
    """The dispatcher's limiter, closed by :meth:`Dispatcher.cancel`: once closed, no request
    starts (checked before and after waiting for the limiter's slot)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.closed: RunCancelled | None = None

    @property
    def current_rate(self) -> float:
        """The wrapped limiter's rate."""
        return self.limiter.current_rate

    async def acquire(self) -> None:
        """The wrapped limiter's slot, or :class:`RunCancelled` once the gate is closed."""
        if self.closed is not None:
            raise self.closed
        await self.limiter.acquire()
        if self.closed is not None:
            raise self.closed

    def on_success(self) -> None:
        """Passed to the wrapped limiter."""
        self.limiter.on_success()

    def on_throttled(self, retry_after: float | None) -> None:
        """Passed to the wrapped limiter."""
        self.limiter.on_throttled(retry_after)


def describe(error: RemoteError | RetriesExhausted) -> RemoteError:
    """The remote's error behind a result (the last attempt's, for an exhausted retry budget)."""
    return error.last_error if isinstance(error, RetriesExhausted) else error


def _unclear(error: RemoteError) -> bool:
    """A failure the remote may have acted on all the same: a 5xx or no answer at all."""
    return error.in_doubt
