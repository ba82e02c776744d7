"""Retrying one remote call: what each error means (classify) apart from the loop that waits.

:func:`classify` is the table from the markers of the one error tree (:mod:`pipeline.errors`) to
an action, for any remote system (AppZen, the merchant platform, CRM.COM);
:class:`RetryPolicy` says how long to wait before the next attempt (capped exponential backoff with
full jitter, at least the server's Retry-After); :func:`call_with_retries` runs the loop: acquire
the rate limiter, call, classify, wait, again. Every wait goes through an injected
:class:`~pipeline.runtime.clock.Clock`, so tests never sleep.

Outcomes of :func:`call_with_retries`:

* success → :class:`Succeeded` ``(value, attempts)``;
* a :class:`~pipeline.errors.RemoteError` marked :class:`~pipeline.errors.ItemError` (this
  invoice is bad) or :class:`~pipeline.errors.TerminalError` (stop the run), or carrying no
  marker → re-raised at once, unchanged, with a note ``on attempt n of m``; ``on_retry`` has seen
  every earlier attempt;
* a :class:`~pipeline.errors.TransientError` one on every attempt → :class:`RetriesExhausted`
  (a row-level outcome: the invoice is failed-retryable, a later run sends it again);
* anything else (a bug, ``CancelledError``) → propagates untouched, never retried.
"""

from __future__ import annotations

import enum
import itertools
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from pipeline.errors import (
    EtlError,
    ItemError,
    RemoteError,
    TerminalError,
    ThrottledError,
    TransientError,
)
from pipeline.runtime.breaker import CircuitBreaker
from pipeline.runtime.clock import Clock
from pipeline.runtime.ratelimit import MAX_PAUSE, RateLimiter

T = TypeVar("T")

_SHARED_RNG = random.Random()  # noqa: S311 (backoff jitter, not a security use)


class Action(enum.Enum):
    """What the retry loop does with an outcome."""

    RETRY = "retry"  # transient: wait, then try again
    THROTTLED = "throttled"  # 429: slow the limiter down, wait, then try again
    GIVE_UP_ROW = "give_up_row"  # this invoice is bad: report it, go on with the others
    STOP_RUN = "stop_run"  # configuration is wrong: stop the run


_ACTIONS: tuple[tuple[type[EtlError], Action], ...] = (
    (ThrottledError, Action.THROTTLED),
    (TransientError, Action.RETRY),
    (ItemError, Action.GIVE_UP_ROW),
    (TerminalError, Action.STOP_RUN),
)
"""Marker → action, most specific first."""


def classify(error: EtlError) -> Action:
    """The action an error's marker calls for; an error without a marker stops the run."""
    for family, action in _ACTIONS:
        if isinstance(error, family):
            return action
    return Action.STOP_RUN


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and how long to wait between them.

    Before retry ``n`` (``n = 1`` after the first attempt failed) the wait is
    ``uniform(0, min(max_delay, base_delay * 2 ** (n - 1)))`` ("full jitter"), and never less than
    the server's Retry-After (itself capped at ``max_retry_after``). ``rng`` seeds the jitter
    (tests); ``None`` uses a process-wide generator.
    """

    attempts: int
    base_delay: float = 0.5
    max_delay: float = 30.0
    rng: random.Random | None = field(default=None, kw_only=True)
    max_retry_after: float = field(default=MAX_PAUSE, kw_only=True)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy: attempts={self.attempts} must be ≥ 1 (1 = no retry)")
        if not (0 <= self.base_delay <= self.max_delay and math.isfinite(self.max_delay)):
            raise ValueError(
                f"RetryPolicy: need 0 ≤ base_delay ({self.base_delay}) ≤ max_delay "
                f"({self.max_delay}) < inf, in seconds"
            )
        if self.max_retry_after < 0:
            raise ValueError(f"RetryPolicy: max_retry_after={self.max_retry_after} must be ≥ 0")

    def backoff_cap(self, retry: int) -> float:
        """The largest jittered wait before retry number ``retry`` (1-based)."""
        exponent = min(max(retry - 1, 0), 64)  # 2**64 times any sane base is past every cap
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry``: jittered backoff, ≥ Retry-After."""
        jittered = (self.rng or _SHARED_RNG).uniform(0.0, self.backoff_cap(retry))
        if retry_after is None or not math.isfinite(retry_after):
            return jittered
        return max(jittered, min(max(retry_after, 0.0), self.max_retry_after))


class Succeeded(NamedTuple, Generic[T]):
    """The value of a call that succeeded and how many attempts it took (1 = first try)."""

    value: T
    attempts: int


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """One failed attempt that will be retried: for progress display and logs."""

    attempt: int
    attempts: int
    error: RemoteError
    delay: float


class RetriesExhausted(TransientError):
    """Every attempt failed with a transient error: the invoice is failed-retryable (a later run
    may succeed).

    ``last_error`` is the final attempt's error (status, error code, correlation id);
    ``attempts`` is how many attempts were made.
    """

    def __init__(self, last_error: RemoteError, attempts: int) -> None:
        self.last_error = last_error
        self.attempts = attempts
        super().__init__(f"gave up after {attempts} attempt(s); last error: {last_error}")


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    clock: Clock,
    *,
    limiter: RateLimiter | None = None,
    on_retry: Callable[[RetryEvent], None] | None = None,
    breaker: CircuitBreaker | None = None,
) -> Succeeded[T]:
    """Call ``fn()`` until it succeeds, a non-retryable outcome comes, or attempts run out.

    The limiter is acquired before every attempt; it hears ``on_success`` for every answer that
    was not throttled (success or a row error) and ``on_throttled(retry_after)`` for every 429.
    With a ``breaker``, every attempt is reported to it; an attempt that fails while it suspects
    an outage does not count against ``policy.attempts`` (the wait before the next one ends by
    the time it is due to trip), and once it trips :class:`~pipeline.errors.RemoteUnreachable`
    is raised before the next attempt.
    """
    caller = object()
    counted = 0
    for attempt in itertools.count(1):
        if breaker is not None:
            breaker.check()
        if limiter is not None:
            await limiter.acquire()
        try:
            value = await _attempt(fn, breaker, caller)
        except RemoteError as error:
            retryable = _handle(error, classify(error), limiter, attempt, policy.attempts)
        else:
            if limiter is not None:
                limiter.on_success()
            return Succeeded(value, attempt)
        free = breaker is not None and breaker.suspected and retryable.in_doubt
        counted += 0 if free else 1
        if counted >= policy.attempts:
            raise RetriesExhausted(retryable, attempt) from retryable
        delay = policy.delay(attempt, retryable.retry_after)
        if breaker is not None:
            delay = breaker.wait_before_retry(delay)
        if on_retry is not None:
            on_retry(RetryEvent(attempt, policy.attempts, retryable, delay))
        await clock.sleep(delay)
    raise AssertionError("unreachable: itertools.count never ends")  # pragma: no cover


async def _attempt(
    fn: Callable[[], Awaitable[T]], breaker: CircuitBreaker | None, caller: object
) -> T:
    """``fn()``, its ending told to the breaker (if any)."""
    if breaker is None:
        return await fn()
    attempt = breaker.started(caller)
    try:
        value = await fn()
    except BaseException as error:
        breaker.ended(attempt, error)
        raise
    breaker.ended(attempt, None)
    return value


def _handle(
    error: RemoteError,
    action: Action,
    limiter: RateLimiter | None,
    attempt: int,
    attempts: int,
) -> RemoteError:
    """Tell the limiter what the answer means; re-raise what must not be retried."""
    if action is Action.THROTTLED and limiter is not None:
        limiter.on_throttled(error.retry_after)
    if action is Action.GIVE_UP_ROW and limiter is not None:
        limiter.on_success()  # the remote answered without throttling: the pace is fine
    if action not in (Action.RETRY, Action.THROTTLED):
        error.add_note(f"on attempt {attempt} of {attempts}")
        raise error
    return error
