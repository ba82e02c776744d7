"""call_with_retries and RetryPolicy: each outcome marker (AppZen's families and any other
system's), backoff bounds, Retry-After, attempt counting, and the limiter hearing about every
answer. Virtual time only (FakeClock)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from pipeline.appzen import errors
from pipeline.connectors.errors import (
    CrmFatal,
    CrmThrottled,
    CrmTransport,
    MerchantRowError,
    MerchantThrottled,
    MerchantUnavailable,
    NotDraft,
)
from pipeline.errors import EtlError
from pipeline.extract.base import ExtractError
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.runtime.retry import (
    Action,
    RetriesExhausted,
    RetryEvent,
    RetryPolicy,
    Succeeded,
    call_with_retries,
    classify,
)
from pipeline.staging.errors import StagingTransientError
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def policy(attempts: int = 5, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(attempts, rng=random.Random(1234), **kwargs)


def quota(retry_after: float | None = None) -> errors.QuotaExceeded:
    return errors.QuotaExceeded(
        "quota used up", status=429, correlation_id="corr-429", retry_after=retry_after
    )


def server_error() -> errors.ServerError:
    return errors.ServerError("boom", status=503, error_code="5e0", correlation_id="corr-503")


def invalid() -> errors.InvalidInvoice:
    return errors.InvalidInvoice("invoice_date: bad date", status=400, error_code="17e3338d")


def credentials() -> errors.CredentialsError:
    return errors.CredentialsError("check APPZEN_API_KEY", status=401)


@dataclass
class Script:
    """An async callable answering from a list: exceptions are raised, values returned."""

    clock: FakeClock
    answers: list[object]
    calls: list[float] = field(default_factory=list)

    async def __call__(self) -> object:
        self.calls.append(self.clock.monotonic())
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


@dataclass
class RecordingLimiter:
    """Stands in for the rate limiter (not under test here): records what it is told."""

    events: list[str] = field(default_factory=list)
    current_rate: float = 10.0

    async def acquire(self) -> None:
        self.events.append("acquire")

    def on_success(self) -> None:
        self.events.append("success")

    def on_throttled(self, retry_after: float | None) -> None:
        self.events.append(f"throttled({retry_after})")


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (errors.QuotaExceeded("q"), Action.THROTTLED),
        (errors.ServerError("s"), Action.RETRY),
        (errors.TransportError("t"), Action.RETRY),
        (errors.RetryableError("r"), Action.RETRY),
        (errors.InvalidInvoice("i"), Action.GIVE_UP_ROW),
        (errors.UnknownInvoice("u"), Action.GIVE_UP_ROW),
        (errors.CredentialsError("c"), Action.STOP_RUN),
        (errors.EndpointNotFound("e"), Action.STOP_RUN),
        (errors.UnexpectedResponse("x"), Action.STOP_RUN),
        (errors.AppZenError("unclassified"), Action.STOP_RUN),
    ],
)
def test_every_outcome_family_maps_to_one_action(error: errors.AppZenError, action: Action) -> None:
    assert classify(error) is action


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (MerchantThrottled("919"), Action.THROTTLED),
        (CrmThrottled("TOO_MANY_REQUESTS"), Action.THROTTLED),
        (MerchantUnavailable("900"), Action.RETRY),
        (CrmTransport("no answer"), Action.RETRY),
        (StagingTransientError("locked"), Action.RETRY),
        (MerchantRowError("913"), Action.GIVE_UP_ROW),
        (
            NotDraft("POSTED", state="POSTED", error_code="INVALID_LIFE_CYCLE_STATE"),
            Action.GIVE_UP_ROW,
        ),
        (CrmFatal("AUTHENTICATION_FAILED"), Action.STOP_RUN),
        (ExtractError("the query failed"), Action.STOP_RUN),
    ],
    ids=lambda value: type(value).__name__,
)
def test_classify_reads_the_marker_whatever_the_system(error: EtlError, action: Action) -> None:
    assert classify(error) is action


def test_http_statuses_reach_the_right_action() -> None:
    """The lead's status table and this one agree end to end."""

    def action(status: int) -> Action:
        kind = errors.outcome_for_status("create", status)
        return classify(kind("x", status=status))

    assert [action(s) for s in (400, 401, 403, 404, 408, 429, 500, 502, 503, 418)] == [
        Action.GIVE_UP_ROW,
        Action.STOP_RUN,
        Action.STOP_RUN,
        Action.STOP_RUN,
        Action.RETRY,
        Action.THROTTLED,
        Action.RETRY,
        Action.RETRY,
        Action.RETRY,
        Action.STOP_RUN,
    ]


# --- the loop -------------------------------------------------------------------------------


async def test_first_try_success_counts_one_attempt(clock: FakeClock) -> None:
    limiter = RecordingLimiter()
    result = await call_with_retries(Script(clock, ["uuid-1"]), policy(), clock, limiter=limiter)
    assert result == Succeeded("uuid-1", 1)
    assert (result.value, result.attempts) == ("uuid-1", 1)
    assert limiter.events == ["acquire", "success"]
    assert clock.slept == []


async def test_transient_errors_are_retried_with_backoff_and_counted(clock: FakeClock) -> None:
    script = Script(clock, [server_error(), errors.TransportError("timeout"), "uuid-2"])
    seen: list[RetryEvent] = []
    limiter = RecordingLimiter()
    result = await call_with_retries(script, policy(), clock, limiter=limiter, on_retry=seen.append)
    assert result == Succeeded("uuid-2", 3)
    assert [(e.attempt, e.attempts, type(e.error)) for e in seen] == [
        (1, 5, errors.ServerError),
        (2, 5, errors.TransportError),
    ]
    assert [e.delay for e in seen] == clock.slept
    assert 0 <= seen[0].delay <= 0.5
    assert 0 <= seen[1].delay <= 1.0
    assert limiter.events == ["acquire", "acquire", "acquire", "success"]  # 5xx: no signal


async def test_quota_exceeded_slows_the_limiter_and_honours_retry_after(clock: FakeClock) -> None:
    script = Script(clock, [quota(retry_after=7.0), "uuid-3"])
    limiter = RecordingLimiter()
    result = await call_with_retries(script, policy(), clock, limiter=limiter)
    assert result.attempts == 2
    assert limiter.events == ["acquire", "throttled(7.0)", "acquire", "success"]
    assert script.calls[1] - script.calls[0] >= 7.0


async def test_retry_after_on_a_server_error_is_honoured_too(clock: FakeClock) -> None:
    busy = errors.ServerError("maintenance", status=503, retry_after=42.0)
    script = Script(clock, [busy, "ok"])
    await call_with_retries(script, policy(), clock)
    assert clock.slept[0] >= 42.0


async def test_an_absurd_retry_after_is_capped(clock: FakeClock) -> None:
    script = Script(clock, [quota(retry_after=86_400.0), "ok"])
    await call_with_retries(script, policy(), clock)
    assert clock.slept == [300.0]


async def test_a_row_error_is_not_retried(clock: FakeClock) -> None:
    limiter = RecordingLimiter()
    rejected = invalid()
    script = Script(clock, [rejected, "never"])
    with pytest.raises(errors.InvalidInvoice) as caught:
        await call_with_retries(script, policy(), clock, limiter=limiter)
    assert caught.value is rejected
    assert caught.value.error_code == "17e3338d"
    assert "on attempt 1 of 5" in (caught.value.__notes__ or [])
    assert len(script.calls) == 1
    assert clock.slept == []
    assert limiter.events == ["acquire", "success"]  # answered without throttling


async def test_a_row_error_after_retries_reports_the_attempt_in_its_note(clock: FakeClock) -> None:
    seen: list[RetryEvent] = []
    script = Script(clock, [server_error(), server_error(), invalid()])
    with pytest.raises(errors.RowError) as caught:
        await call_with_retries(script, policy(), clock, on_retry=seen.append)
    assert caught.value.__notes__ == ["on attempt 3 of 5"]
    assert len(seen) == 2


async def test_a_fatal_error_stops_at_once(clock: FakeClock) -> None:
    limiter = RecordingLimiter()
    script = Script(clock, [credentials(), "never"])
    with pytest.raises(errors.CredentialsError):
        await call_with_retries(script, policy(), clock, limiter=limiter)
    assert len(script.calls) == 1
    assert clock.slept == []
    assert limiter.events == ["acquire"]


async def test_anything_else_propagates_untouched(clock: FakeClock) -> None:
    script = Script(clock, [KeyError("a bug"), "never"])
    with pytest.raises(KeyError):
        await call_with_retries(script, policy(), clock)
    assert len(script.calls) == 1


async def test_exhaustion_raises_retries_exhausted_with_the_count(clock: FakeClock) -> None:
    last = server_error()
    script = Script(clock, [server_error(), quota(), server_error(), last])
    seen: list[RetryEvent] = []
    with pytest.raises(RetriesExhausted) as caught:
        await call_with_retries(script, policy(attempts=4), clock, on_retry=seen.append)
    assert caught.value.attempts == 4
    assert caught.value.last_error is last
    assert caught.value.__cause__ is last
    assert "gave up after 4 attempt(s)" in str(caught.value)
    assert "corr-503" in str(caught.value)  # AppZen support asks for the correlation id
    assert len(script.calls) == 4
    assert len(seen) == len(clock.slept) == 3  # no pointless wait after the last attempt


async def test_one_attempt_means_no_retry(clock: FakeClock) -> None:
    script = Script(clock, [quota()])
    with pytest.raises(RetriesExhausted) as caught:
        await call_with_retries(script, policy(attempts=1), clock)
    assert caught.value.attempts == 1
    assert clock.slept == []


async def test_the_real_limiter_paces_every_attempt(clock: FakeClock) -> None:
    limiter = AdaptiveRateLimiter(2.0, clock=clock, cooldown=0.0, increase=0.0)
    script = Script(clock, [server_error(), quota(retry_after=3.0), server_error(), "ok"])
    result = await call_with_retries(script, policy(base_delay=0.0), clock, limiter=limiter)
    assert result.attempts == 4
    assert script.calls[:2] == pytest.approx([0.0, 0.5])  # 2/s even with no backoff
    assert script.calls[2] == pytest.approx(3.5)  # Retry-After paused everyone for 3 s
    assert script.calls[3] - script.calls[2] == pytest.approx(1 / 1.4)  # 2/s x 0.7
    assert limiter.current_rate == pytest.approx(1.4)


async def test_many_invoices_against_a_throttling_server_all_get_through(clock: FakeClock) -> None:
    """64 concurrent calls share one limiter; the server admits 10/s and answers 429 beyond."""
    limiter = AdaptiveRateLimiter(40.0, clock=clock)
    admitted: list[float] = []

    def post(index: int) -> Callable[[], Awaitable[int]]:
        async def call() -> int:
            await clock.sleep(0.05)
            now = clock.monotonic()
            if len([t for t in admitted[-10:] if t > now - 1.0]) >= 10:
                raise quota(retry_after=None)
            admitted.append(now)
            return index

        return call

    retry_policy = RetryPolicy(20, 0.5, 10.0, rng=random.Random(5))
    results = await asyncio.gather(
        *(call_with_retries(post(i), retry_policy, clock, limiter=limiter) for i in range(64))
    )
    assert sorted(r.value for r in results) == list(range(64))
    assert sum(r.attempts for r in results) > 64  # some were throttled and retried
    assert limiter.current_rate < 40.0


# --- the policy -----------------------------------------------------------------------------


def test_backoff_caps_double_up_to_max_delay() -> None:
    retry_policy = policy(base_delay=0.5, max_delay=30.0)
    caps = [retry_policy.backoff_cap(n) for n in range(1, 10)]
    assert caps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert retry_policy.backoff_cap(10_000) == 30.0  # no overflow on absurd counts


@pytest.mark.parametrize("retry", [1, 3, 8])
def test_full_jitter_stays_within_zero_and_the_cap_and_spreads(retry: int) -> None:
    retry_policy = policy(base_delay=0.5, max_delay=30.0)
    cap = retry_policy.backoff_cap(retry)
    delays = [retry_policy.delay(retry) for _ in range(2_000)]
    assert all(0.0 <= d <= cap for d in delays)
    assert min(delays) < 0.05 * cap  # full jitter: close to zero happens
    assert max(delays) > 0.95 * cap  # and close to the cap
    assert sum(delays) / len(delays) == pytest.approx(cap / 2, rel=0.1)


def test_retry_after_is_a_floor_and_capped() -> None:
    retry_policy = policy(base_delay=0.5, max_delay=30.0)
    assert all(retry_policy.delay(1, retry_after=5.0) == 5.0 for _ in range(100))
    assert retry_policy.delay(1, retry_after=10_000.0) == 300.0
    assert 0 <= retry_policy.delay(1, retry_after=-3.0) <= 0.5
    assert 0 <= retry_policy.delay(1, retry_after=float("nan")) <= 0.5
    assert RetryPolicy(3, max_retry_after=60.0).delay(1, retry_after=600.0) == 60.0


def test_the_same_seed_gives_the_same_delays() -> None:
    first = RetryPolicy(5, rng=random.Random(9))
    second = RetryPolicy(5, rng=random.Random(9))
    assert [first.delay(n) for n in range(1, 6)] == [second.delay(n) for n in range(1, 6)]


def test_default_rng_works_without_a_seed() -> None:
    assert 0 <= RetryPolicy(3).delay(2) <= 1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), "attempts=0 must be ≥ 1"),
        ((3, -1.0), r"need 0 ≤ base_delay \(-1.0\) ≤ max_delay"),
        ((3, 5.0, 1.0), r"base_delay \(5.0\) ≤ max_delay \(1.0\)"),
        ((3, 0.5, float("inf")), r"max_delay \(inf\) < inf"),
    ],
)
def test_bad_policies_are_refused(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(*args)  # type: ignore[arg-type]
