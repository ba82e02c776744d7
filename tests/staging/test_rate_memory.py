"""The remembered AppZen rate in staging: a run that drew 429s leaves what it learned, the next
starts just under it (never above the configured rate) and lingers there; a memory the limiter
outgrew is forgotten, an old one ignored; each endpoint and account keeps its own."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from pipeline.staging.ratememory import MEMORY_DAYS, RateMemory
from pipeline.staging.tables import appzen_rate
from tests.staging.helpers import FakeClock
from tests.support.clock import FakeClock as VirtualClock


def settings(**changes: object) -> Settings:
    return load_settings(**{"appzen_rate_limit": 100.0, **changes})


def memory(store: StagingStore, endpoint: str = "invoices", **changes: object) -> RateMemory:
    found = store.rate_memory(settings(**changes), endpoint)
    assert found is not None
    return found


def learned(limiter: AdaptiveRateLimiter, at: float) -> None:
    """The limiter drew a 429 while pacing at ``at`` requests/s (a run too short to measure)."""
    limiter._rate = at  # the rate AIMD had climbed to when the quota ran out
    limiter.on_throttled(None)


def pressed(limiter: AdaptiveRateLimiter, clock: VirtualClock, at: float, quota: float) -> None:
    """A 429 at ``at`` requests/s, then AppZen lets ``quota`` a second through for 20 s."""
    learned(limiter, at)
    for _ in range(int(20 * quota)):
        clock.advance(1 / quota)
        limiter.on_success()


def test_a_first_run_remembers_the_quota_it_measured_and_the_next_starts_there(
    store: StagingStore,
) -> None:
    first = memory(store)
    clock = VirtualClock()
    limiter = first.limiter(100.0, clock)
    assert (limiter.current_rate, limiter.throttled_at, first.recalled) == (100.0, None, None)

    pressed(limiter, clock, at=80.0, quota=50.0)  # the 429 came at 80: a burst got through first
    first.remember(limiter)

    second = memory(store)
    again = second.limiter(100.0, VirtualClock())
    assert second.recalled is not None
    assert second.recalled.quota == pytest.approx(50.0, rel=0.01), "measured, not 80"
    assert again.current_rate == pytest.approx(50.0, rel=0.01), "it starts at the quota"
    assert again.throttled_at == pytest.approx(50.0, rel=0.01), "and lingers there"
    assert again.max_rate == 100.0, "the configured rate stays the ceiling"


def test_a_run_too_short_to_measure_remembers_just_under_its_last_429(
    store: StagingStore,
) -> None:
    first = memory(store)
    limiter = first.limiter(100.0, VirtualClock())
    learned(limiter, 52.0)
    first.remember(limiter)

    recalled = memory(store).recall()
    assert recalled is not None
    assert recalled.quota == pytest.approx(0.9 * 52.0)


def test_under_a_memory_a_run_without_429s_keeps_it_and_one_with_lower_429s_lowers_it(
    store: StagingStore,
) -> None:
    first = memory(store)
    clock = VirtualClock()
    limiter = first.limiter(100.0, clock)
    pressed(limiter, clock, at=80.0, quota=50.0)
    first.remember(limiter)

    calm = memory(store)
    calm.remember(calm.limiter(100.0, VirtualClock()))  # no 429 this time
    kept = memory(store).recall()
    assert kept is not None
    assert kept.quota == pytest.approx(50.0, rel=0.01)

    shrunk = memory(store)
    clock = VirtualClock()
    lower = shrunk.limiter(100.0, clock)
    pressed(lower, clock, at=30.0, quota=28.0)  # AppZen lowered the quota to 28/s
    shrunk.remember(lower)
    now = memory(store).recall()
    assert now is not None
    assert now.quota == pytest.approx(28.5, rel=0.02), "0.95x the rate the 429 came at"


def test_a_run_without_429s_and_without_memory_writes_nothing(store: StagingStore) -> None:
    quiet = memory(store)
    quiet.remember(quiet.limiter(100.0, VirtualClock()))
    assert memory(store).recall() is None


def test_the_start_never_exceeds_a_lowered_configured_rate(store: StagingStore) -> None:
    first = memory(store)
    limiter = first.limiter(100.0, VirtualClock())
    learned(limiter, 52.0)
    first.remember(limiter)

    lowered = memory(store, appzen_rate_limit=30.0).limiter(30.0, VirtualClock())
    assert (lowered.current_rate, lowered.max_rate) == (30.0, 30.0)


async def test_a_memory_the_rate_outgrew_is_forgotten(store: StagingStore) -> None:
    first = memory(store)
    limiter = first.limiter(100.0, VirtualClock())
    learned(limiter, 40.0)
    first.remember(limiter)

    clock = VirtualClock()
    second = memory(store)
    grown = second.limiter(100.0, clock)
    for _ in range(200):  # 200 s of successes: the quota has grown, AIMD climbs past 1.1x
        await clock.sleep(1.0)
        grown.on_success()
    assert grown.throttled_at is None
    second.remember(grown)

    assert memory(store).recall() is None, "the next run starts from the configured rate again"


def test_an_old_memory_is_ignored(store: StagingStore, clock: FakeClock) -> None:
    first = memory(store)
    limiter = first.limiter(100.0, VirtualClock())
    learned(limiter, 52.0)
    first.remember(limiter)

    clock.advance((MEMORY_DAYS + 1) * 86_400)
    assert memory(store).recall() is None
    assert memory(store).limiter(100.0, VirtualClock()).current_rate == 100.0


def test_each_endpoint_and_account_keeps_its_own(store: StagingStore) -> None:
    invoices = memory(store, "invoices")
    limiter = invoices.limiter(100.0, VirtualClock())
    learned(limiter, 52.0)
    invoices.remember(limiter)

    assert memory(store, "status").recall() is None, "AppZen's quota is per data type"
    assert memory(store, appzen_customer_id="other").recall() is None
    assert memory(store).account.split(":")[1] == "invoices"
    assert "key" not in memory(store).account


def test_remembering_can_be_switched_off(store: StagingStore) -> None:
    assert store.rate_memory(settings(appzen_remember_rate=False), "invoices") is None


def test_an_unreadable_memory_means_a_fresh_start_not_a_failed_run(
    store: StagingStore, caplog: pytest.LogCaptureFixture
) -> None:
    lost = memory(store)
    with store._engine.begin() as conn:  # the table is gone (a staging database half-restored)
        conn.execute(sa.text("DROP TABLE appzen_rate"))
    try:
        with caplog.at_level(logging.WARNING):
            assert lost.recall() is None
            limiter = lost.limiter(100.0, VirtualClock())
            learned(limiter, 52.0)
            lost.remember(limiter)
    finally:  # the servers' staging database is shared by the session's tests
        with store._engine.begin() as conn:
            appzen_rate.create(conn)
    assert "remembered AppZen rate could not be read" in caplog.text
    assert "was not remembered" in caplog.text
