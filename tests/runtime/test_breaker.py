"""The circuit breaker in the dispatcher: calls that get nothing but failures for the window stop
the dispatcher as an outage (no failed results, the one line naming host and last error); one
call failing while others are answered is that call's failure; an answer before the window
clears the suspicion and the calls go on with the retries they had left. Virtual time
(FakeClock) except the hanging calls, which wait in real time as a network read does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from pipeline.appzen import errors
from pipeline.errors import RemoteUnreachable
from pipeline.runtime.breaker import CircuitBreaker
from pipeline.runtime.dispatch import Dispatcher, DispatchReport
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.runtime.retry import RetriesExhausted, RetryPolicy
from tests.support.clock import FakeClock

URL = "https://api.appzen.example:8443/dictionary-data-services"


def dispatcher(clock: FakeClock, window: float = 30.0, attempts: int = 6) -> Dispatcher:
    return Dispatcher(
        limiter=AdaptiveRateLimiter(1000, clock=clock),
        policy=RetryPolicy(attempts, rng=random.Random(7)),
        clock=clock,
        concurrency=16,
        breaker=CircuitBreaker.for_url("AppZen", URL, window, clock),
    )


def refused() -> errors.TransportError:
    return errors.TransportError("no answer from AppZen (ConnectError: Connection refused)")


async def run(
    calls: Dispatcher, items: list[str], call: Callable[[str], Awaitable[str]]
) -> DispatchReport[str, str]:
    return await calls.run(items, call)


async def test_nothing_but_refused_connections_for_the_window_is_an_outage() -> None:
    clock = FakeClock()
    calls = dispatcher(clock)
    tries: dict[str, int] = {}

    async def down(item: str) -> str:
        tries[item] = tries.get(item, 0) + 1
        raise refused()

    report = await run(calls, [f"INV-{n}" for n in range(40)], down)

    assert isinstance(report.fatal, RemoteUnreachable)
    assert report.results == [], "no invoice is written off as failed during an outage"
    assert 30.0 <= clock.monotonic() < 31.0
    assert max(tries.values()) > 6, "failed attempts during an outage use up no retries"
    message = str(report.fatal)
    assert "\n" not in message
    assert message.startswith("AppZen unreachable: no answer from api.appzen.example:8443 for 30 s")
    assert "last error: no answer from AppZen (ConnectError: Connection refused)" in message
    assert message.endswith("nothing lost: the invoices stay pending; rerun when AppZen answers")
    assert (await run(calls, ["INV-99"], down)).results == [], "a stopped dispatcher sends nothing"


async def test_5xx_on_every_request_for_the_window_is_an_outage() -> None:
    clock = FakeClock()
    calls = dispatcher(clock, window=45.0)

    async def failing(item: str) -> str:
        raise errors.ServerError("AppZen server error", status=503, correlation_id=item)

    report = await run(calls, ["A", "B", "C"], failing)

    assert isinstance(report.fatal, RemoteUnreachable)
    assert report.results == []
    assert 45.0 <= clock.monotonic() < 46.0
    assert "for 45 s (last error: AppZen server error | HTTP 503" in str(report.fatal)


async def test_one_call_failing_while_the_others_are_answered_is_that_calls_failure() -> None:
    clock = FakeClock()
    calls = dispatcher(clock, attempts=3)

    async def one_broken(item: str) -> str:
        await clock.sleep(0.5)  # the others keep being answered while it fails
        if item == "BROKEN":
            raise errors.ServerError("AppZen server error", status=500)
        return f"uuid-{item}"

    report = await run(calls, ["BROKEN", *(f"OK-{n}" for n in range(200))], one_broken)

    assert report.fatal is None
    [failed] = [r for r in report.results if r.error is not None]
    assert failed.item == "BROKEN"
    assert isinstance(failed.error, RetriesExhausted)
    assert failed.attempts == 3
    assert len(report.results) == 201


async def test_an_answer_before_the_window_clears_the_suspicion() -> None:
    clock = FakeClock()
    calls = dispatcher(clock, attempts=2)
    back_at = 20.0  # AppZen answers again after 20 s: no outage

    async def blip(item: str) -> str:
        if clock.monotonic() < back_at:
            raise refused()
        return f"uuid-{item}"

    report = await run(calls, [f"INV-{n}" for n in range(10)], blip)

    assert report.fatal is None
    assert [r.error for r in report.results] == [None] * 10
    assert all(r.attempts > 2 for r in report.results), "retries during the blip were free"


async def test_a_single_call_failing_alone_is_not_an_outage() -> None:
    clock = FakeClock()
    calls = dispatcher(clock, attempts=4)

    async def down(item: str) -> str:
        raise refused()

    report = await run(calls, ["ONLY"], down)

    assert report.fatal is None, "one invoice failing alone may be that invoice's problem"
    [result] = report.results
    assert isinstance(result.error, RetriesExhausted)
    assert result.attempts == 4


async def test_requests_that_hang_trip_the_breaker_in_real_time() -> None:
    clock = FakeClock()
    calls = dispatcher(clock, window=0.3)  # tuned: the CLI test holds the default's twin
    never = asyncio.Event()

    async def hang(item: str) -> str:
        await never.wait()
        return item

    report = await asyncio.wait_for(run(calls, ["A", "B", "C"], hang), timeout=10)

    assert isinstance(report.fatal, RemoteUnreachable)
    assert report.results == []
    assert "for 0.3 s (3 requests waited that long and are still waiting)" in str(report.fatal)


@pytest.mark.parametrize(
    "answer",
    [
        errors.InvalidInvoice("bad date", status=400),
        errors.QuotaExceeded("slow down", status=429, retry_after=0.1),
    ],
    ids=["400", "429"],
)
async def test_any_answer_but_5xx_means_appzen_is_there(answer: errors.AppZenError) -> None:
    breaker = CircuitBreaker.for_url("AppZen", URL, 30.0, FakeClock())
    for caller in ("A", "B"):
        breaker.ended(breaker.started(caller), refused())
    assert breaker.suspected
    breaker.ended(breaker.started("C"), answer)
    assert not breaker.suspected
