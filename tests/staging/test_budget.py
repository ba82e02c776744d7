"""The daily AppZen budget in staging: blocks granted up to the budget and never past it (also
from many workers at once), reservations kept for their flows, unused requests given back, and a
new budget at midnight in the configured time zone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from pipeline.errors import BudgetSpent
from pipeline.runtime.budget import DailyBudget
from pipeline.settings import Settings, SettingsError, load_settings
from pipeline.staging import StagingStore
from pipeline.staging.budget import BudgetPolicy, StagingLedger, forecast
from tests.staging.helpers import FakeClock


def ledger(store: StagingStore, clock: FakeClock, **policy: object) -> StagingLedger:
    """The store's ledger under a policy (``limit`` …) of the test's own."""
    return StagingLedger(BudgetPolicy(**policy), store._write, clock)  # type: ignore[arg-type]


def drain(budget: StagingLedger, flow: str, block: int = 20) -> int:
    """Take blocks for ``flow`` until refused; how many requests were granted."""
    total = 0
    while (granted := budget.take(flow, block).granted) > 0:
        total += granted
    return total


def settings(**changes: object) -> Settings:
    return load_settings(**changes)


def test_the_default_budget_is_appzens_public_guideline_in_utc() -> None:
    policy = BudgetPolicy.from_settings(settings())
    assert (policy.limit, policy.zone, dict(policy.reserves)) == (300_000, "UTC", {})


def test_the_account_is_a_fingerprint_of_endpoint_and_customer_never_a_secret() -> None:
    one = BudgetPolicy.from_settings(
        settings(
            appzen_base_url="https://api.appzen.com/dictionary-data-services",
            appzen_api_key="key-Secret-1",
            appzen_customer_id="42",
            appzen_customer_key="cust-Secret-1",
        )
    )
    other_keys = BudgetPolicy.from_settings(
        settings(
            appzen_base_url="https://api.appzen.com/dictionary-data-services",
            appzen_api_key="key-Secret-2",
            appzen_customer_id="42",
            appzen_customer_key="cust-Secret-2",
        )
    )
    assert one.account == other_keys.account  # the customer's budget, whichever key
    assert len(one.account) == 16
    assert "Secret" not in one.account
    assert one.account != BudgetPolicy.from_settings(settings()).account


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"appzen_budget_timezone": "Mars/Olympus"}, "APPZEN_BUDGET_TIMEZONE: unknown time zone"),
        ({"appzen_daily_budget": 0}, "APPZEN_DAILY_BUDGET: Input should be greater than"),
        (
            {
                "appzen_daily_budget": 100,
                "appzen_budget_reserve_nightly": 80,
                "appzen_budget_reserve_status_sync": 30,
            },
            "(110) exceed APPZEN_DAILY_BUDGET (100)",
        ),
    ],
)
def test_bad_budget_settings_are_refused_naming_the_variable(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        settings(**changes)
    assert message in str(raised.value)


def test_blocks_are_granted_up_to_the_budget_then_one_line_says_when_it_resumes(
    store: StagingStore, clock: FakeClock
) -> None:
    budget = ledger(store, clock, limit=130)
    grants = []
    while (granted := budget.take("sync", 20).granted) > 0:
        grants.append(granted)
    # blocks while 4 blocks or more are left, then one request at a time, up to the budget
    assert grants == [20, 20, 20] + [1] * 70
    spent = budget.take("sync", 20)
    assert spent.granted == 0
    assert spent.message == (
        "AppZen daily budget spent for sync: 130 of 130 requests used on 2025-03-01 (UTC); "
        "resumes 2025-03-02 00:00 UTC; nothing lost: the invoices stay pending, rerun then"
    )
    assert spent.resumes_at == "2025-03-02T00:00:00+00:00"


def test_a_new_day_in_the_configured_zone_brings_a_new_budget(
    store: StagingStore, clock: FakeClock
) -> None:
    clock.current = datetime(2025, 3, 2, 7, 30, tzinfo=UTC)  # 23:30 on 03-01 in Los Angeles
    budget = ledger(store, clock, limit=10, zone="America/Los_Angeles")
    assert drain(budget, "backfill") == 10
    spent = budget.take("backfill", 20)
    assert spent.granted == 0
    assert "used on 2025-03-01 (America/Los_Angeles)" in spent.message
    assert "resumes 2025-03-02 00:00 America/Los_Angeles" in spent.message
    clock.advance(29 * 60)  # 23:59 there: still the same AppZen day
    assert budget.take("backfill", 20).granted == 0
    clock.advance(60)  # midnight there
    assert drain(budget, "backfill") == 10


def test_reservations_are_kept_for_their_flows(store: StagingStore, clock: FakeClock) -> None:
    budget = ledger(store, clock, limit=100, reserves={"sync": 30, "status_sync": 10})
    assert drain(budget, "backfill") == 60
    refused = budget.take("backfill", 1)
    assert refused.granted == 0
    assert "60 of 100 requests used" in refused.message
    assert "40 kept for status_sync, sync" in refused.message
    assert drain(budget, "sync") == 30  # its own, not the status-sync's
    assert drain(budget, "status_sync") == 10
    assert budget.take("sync", 1).granted == 0


def test_a_reserved_flow_may_also_use_what_nobody_else_took(
    store: StagingStore, clock: FakeClock
) -> None:
    budget = ledger(store, clock, limit=100, reserves={"sync": 30})
    assert drain(budget, "sync") == 100
    assert budget.take("retry_failed", 1).granted == 0


def test_unused_requests_are_given_back_and_usage_counts_what_was_sent(
    store: StagingStore, clock: FakeClock
) -> None:
    account = BudgetPolicy.from_settings(settings(appzen_daily_budget=50)).account
    shared = ledger(store, clock, limit=50, account=account)
    run = DailyBudget(shared, "sync", block=20)
    for _ in range(23):
        run.take()
    run.close()
    other = DailyBudget(shared, "backfill", block=20)
    for _ in range(27):
        other.take()
    with pytest.raises(BudgetSpent) as raised:
        other.take()
    assert raised.value.resumes_at == "2025-03-02T00:00:00+00:00"
    assert other.spent
    assert other.used == 27  # the 28th was refused: not counted
    usage = store.budget_usage(settings(appzen_daily_budget=50))
    assert (usage.used, usage.by_flow, usage.day) == (
        50,
        {"sync": 23, "backfill": 27},
        "2025-03-01",
    )


def test_workers_taking_at_once_never_exceed_the_budget(store_url: str, clock: FakeClock) -> None:
    """Four workers, each with its own connection pool, take single requests as fast as they can:
    exactly the budget is granted, however the takes interleave."""
    limit, workers = 101, 4
    stores = [StagingStore.open(store_url, now=clock) for _ in range(workers)]
    taken = [0] * workers

    def work(index: int) -> None:
        run = DailyBudget(ledger(stores[index], clock, limit=limit), "backfill", block=3)
        try:
            while True:
                run.take()
                taken[index] += 1
        except BudgetSpent:
            pass

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for opened in stores:
        opened.close()
    assert sum(taken) == limit


NOW = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)  # six hours left of the AppZen day


def test_a_forecast_that_fits_today_ends_today_at_the_rate() -> None:
    days = forecast(BudgetPolicy(300_000), "backfill", 36_000, used={}, now=NOW, rate=20.0)
    assert (days.days, days.left_today, days.per_day) == (1, 300_000, 300_000)
    assert days.eta == datetime(2026, 12, 3, 18, 30, tzinfo=UTC)


def test_a_three_day_backfill_leaves_the_nightly_its_reservation() -> None:
    policy = BudgetPolicy(300_000, reserves={"sync": 20_000, "status_sync": 5_000})
    used = {"*": 100_000, "sync": 15_000}  # sync still has 5,000 of its reservation to use
    days = forecast(policy, "backfill", 700_000, used=used, now=NOW, rate=50.0)
    assert days.left_today == 300_000 - 100_000 - 5_000 - 5_000
    assert days.per_day == 275_000
    # 190,000 today, 275,000 on 12-04, the last 235,000 on 12-05 (at 50/s: 4,700 s)
    assert days.days == 3
    assert days.eta == datetime(2026, 12, 5, 1, 18, 20, tzinfo=UTC)


def test_a_forecast_counts_what_the_rate_can_send_in_a_day() -> None:
    days = forecast(BudgetPolicy(300_000), "backfill", 100_000, used={}, now=NOW, rate=1.0)
    assert (days.left_today, days.per_day) == (6 * 3600, 86_400)
    assert days.days == 2  # 21,600 today at 1/s, the last 78,400 tomorrow
    assert days.eta == datetime(2026, 12, 4, 21, 46, 40, tzinfo=UTC)


def test_a_forecast_in_a_zone_starts_each_day_at_local_midnight() -> None:
    policy = BudgetPolicy(1_000, zone="America/Los_Angeles")
    days = forecast(policy, "backfill", 2_500, used={"*": 1_000}, now=NOW, rate=100.0)
    assert days.left_today == 0
    assert days.days == 3
    assert days.eta == datetime(2026, 12, 6, 8, 0, 5, tzinfo=UTC)  # 00:00:05 PST on 12-06


def test_a_forecast_when_reservations_take_the_whole_budget_says_never() -> None:
    policy = BudgetPolicy(100, reserves={"sync": 100})
    days = forecast(policy, "backfill", 10, used={}, now=NOW, rate=10.0)
    assert (days.days, days.eta) == (0, None)
