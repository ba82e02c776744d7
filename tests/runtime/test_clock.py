"""FakeClock (tests/support/clock.py): virtual time that wakes concurrent sleepers in time order;
SystemClock basics."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.runtime.clock import SYSTEM_CLOCK, Clock
from tests.support.clock import QUIET_ROUNDS, FakeClock


async def test_sleep_advances_virtual_time_at_once() -> None:
    clock = FakeClock(start=100.0)
    await clock.sleep(3600.0)
    assert clock.monotonic() == 3700.0
    assert clock.slept == [3600.0]


async def test_concurrent_sleepers_wake_in_time_order_and_see_their_own_time() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    await asyncio.gather(sleeper("c", 3.0), sleeper("a", 1.0), sleeper("b", 2.0))
    assert woke == [("a", 1.0), ("b", 2.0), ("c", 3.0)]


async def test_equal_wake_times_wake_in_call_order() -> None:
    clock = FakeClock()
    woke: list[int] = []

    async def sleeper(index: int) -> None:
        await clock.sleep(1.0)
        woke.append(index)

    await asyncio.gather(*(sleeper(i) for i in range(20)))
    assert woke == list(range(20))


async def test_a_woken_coroutine_runs_before_time_moves_on() -> None:
    """A loop of short sleeps interleaves exactly with a long-running one."""
    clock = FakeClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            await clock.sleep(1.0)
            await asyncio.sleep(0)  # some non-clock work between sleeps
            ticks.append(clock.monotonic())

    async def late() -> float:
        await clock.sleep(2.5)
        return clock.monotonic()

    _, late_time = await asyncio.gather(ticker(), late())
    assert ticks == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert late_time == 2.5


async def test_a_woken_coroutine_may_yield_a_few_times_before_sleeping_again() -> None:
    clock = FakeClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(3):
            await clock.sleep(1.0)
            for _ in range(QUIET_ROUNDS):
                await asyncio.sleep(0)
            ticks.append(clock.monotonic())

    async def other() -> float:
        await clock.sleep(1.5)
        return clock.monotonic()

    _, other_time = await asyncio.gather(ticker(), other())
    assert (ticks, other_time) == ([1.0, 2.0, 3.0], 1.5)


async def test_a_sleeper_started_by_a_woken_coroutine_takes_its_turn() -> None:
    clock = FakeClock()
    woke: list[tuple[str, float]] = []

    async def child() -> None:
        await clock.sleep(0.5)
        woke.append(("child", clock.monotonic()))

    async def parent() -> None:
        await clock.sleep(1.0)
        woke.append(("parent", clock.monotonic()))
        await asyncio.create_task(child())

    async def other() -> None:
        await clock.sleep(2.0)
        woke.append(("other", clock.monotonic()))

    await asyncio.gather(parent(), other())
    assert woke == [("parent", 1.0), ("child", 1.5), ("other", 2.0)]


async def test_a_sleeper_that_then_waits_on_something_else_does_not_stop_time() -> None:
    clock = FakeClock()
    ready = asyncio.Event()

    async def waiter() -> float:
        await clock.sleep(1.0)
        await ready.wait()  # set by another sleeper, later in virtual time
        await clock.sleep(1.0)
        return clock.monotonic()

    async def setter() -> None:
        await clock.sleep(5.0)
        ready.set()

    waited, _ = await asyncio.gather(waiter(), setter())
    assert waited == 6.0


async def test_cancelled_sleeper_does_not_hold_up_the_others() -> None:
    clock = FakeClock()
    doomed = asyncio.create_task(clock.sleep(5.0))
    await asyncio.sleep(0)
    assert clock.sleeping == 1
    doomed.cancel()
    await clock.sleep(10.0)
    assert clock.monotonic() == 10.0
    assert doomed.cancelled()
    assert clock.sleeping == 0


async def test_zero_or_negative_sleep_only_yields() -> None:
    clock = FakeClock(start=5.0)
    await clock.sleep(0)
    await clock.sleep(-1.0)
    assert clock.monotonic() == 5.0


async def test_poll_loop_yielding_with_sleep_zero_does_not_stop_time() -> None:
    clock = FakeClock()
    done = asyncio.Event()

    async def poller() -> int:
        spins = 0
        while not done.is_set():
            spins += 1
            await asyncio.sleep(0)
        return spins

    async def setter() -> None:
        await clock.sleep(1.0)
        done.set()

    spins, _ = await asyncio.gather(poller(), setter())
    assert clock.monotonic() == 1.0
    assert spins >= 1


def test_advance_by_hand_moves_time_without_an_event_loop() -> None:
    clock = FakeClock(start=1.0)
    clock.advance(2.5)
    assert clock.monotonic() == 3.5


def test_advance_refuses_to_go_backwards() -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        FakeClock().advance(-1.0)


async def test_system_clock_is_monotonic_and_sleep_zero_returns() -> None:
    clock: Clock = SYSTEM_CLOCK
    before = clock.monotonic()
    await clock.sleep(0)
    await clock.sleep(-5)
    assert clock.monotonic() >= before
