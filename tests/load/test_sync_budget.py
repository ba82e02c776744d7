"""The daily AppZen budget over whole runs: two workers posting at once on one staging (SQLite,
PostgreSQL) stop after exactly the budget's requests, cleanly (status failed, exit code 5, one
line saying when it resumes, no invoice failed, the rest pending and unclaimed), and a rerun after
the day boundary delivers the rest: every invoice created once, nothing sent twice, nothing lost.
Pacing and retries run on the virtual clock; the AppZen day on a fake wall clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.cli.runs import EXIT_BUDGET, exit_code
from pipeline.devkit.sample_erp import GenerationReport, generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.load.sync import SyncJob
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary
from tests import databases
from tests.load.sync_helpers import (
    NAME,
    assert_counts_add_up,
    expected,
    options,
    requests_sent,
    tuned,
)
from tests.staging.helpers import FakeClock as WallClock
from tests.support.clock import FakeClock

pytestmark = pytest.mark.parametrize(
    "staging", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)


@pytest.fixture
def erp(tmp_path: Path) -> tuple[str, GenerationReport]:
    """A clean sample ERP (no dirty rows): two workers both reading a bad row race to open its
    failure-ledger entry on PostgreSQL (a unique violation): not what this test is about."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    return url, generate(url, invoices=60, seed=5, dirty_share=0.0)


@pytest.fixture
def staging_url(staging: str, tmp_path: Path) -> Iterator[str]:
    """An empty staging database of the parametrized kind."""
    if staging == "sqlite":
        yield f"sqlite:///{tmp_path / 'budget-staging.db'}"
        return
    with databases.pg_schema("budget") as url:
        yield url


async def workers(settings: Settings, url: str, wall: WallClock, count: int) -> list[RunSummary]:
    """``count`` workers (each its own staging connection pool and claim owner) sync at once."""
    stores = [StagingStore.open(url, now=wall) for _ in range(count)]
    clock = FakeClock()
    try:
        jobs = [
            SyncJob(options(label=f"worker{n}"), settings, store=store, clock=clock)
            for n, store in enumerate(stores)
        ]
        return list(await asyncio.gather(*(job.run() for job in jobs)))
    finally:
        for store in stores:
            store.close()


def test_two_workers_stop_after_exactly_the_budget_and_resume_the_next_day(
    sandbox: SandboxServer, settings: Settings, staging_url: str
) -> None:
    valid = expected(settings)
    budget = len(valid) // 2 + 3  # not a multiple of the block; the rest fits in a day
    tight = tuned(settings, appzen_daily_budget=budget, batch_size=4)  # claims interleave
    wall = WallClock(datetime(2026, 12, 3, 21, 15, tzinfo=UTC))

    stopped = asyncio.run(workers(tight, staging_url, wall, 2))

    assert requests_sent(sandbox) == budget
    assert sandbox.state.response_counts() == {201: budget}
    for summary in stopped:
        assert summary.status == "failed"
        assert summary.budget_spent
        assert not summary.outage
        assert summary.fatal == (
            f"AppZen daily budget spent for sync: {budget} of {budget} requests used on "
            "2026-12-03 (UTC); resumes 2026-12-04 00:00 UTC; nothing lost: the invoices stay "
            "pending, rerun then"
        )
        assert summary.counts["failed_appzen"] == summary.counts["failed_retries"] == 0
        assert summary.counts["budget_spent"] == 1
        assert_counts_add_up(summary)
    assert sum(s.counts["budget_used"] for s in stopped) == budget
    assert all(s.counts["budget_used"] > 0 for s in stopped)  # both workers sent
    assert sum(s.counts["created"] for s in stopped) == budget
    assert exit_code([("sync", s) for s in stopped]) == EXIT_BUDGET == 5
    with StagingStore.open(staging_url, now=wall) as store:
        states = store.count_by_state(NAME)  # the rest: pending, or not extracted yet
        assert states.pop("sent") == budget
        assert set(states) <= {"pending"}
        assert all(r.claimed_by is None for r in store.invoices_in_state(NAME, "pending", 1000))
        assert store.budget_usage(tight).used == budget
        runs = store.list_runs()
        assert [r.status for r in runs] == ["failed", "failed"]
        assert all(r.counts.get("budget_spent") == 1 for r in runs), [r.counts for r in runs]

    # Same day, later: still spent, nothing goes out.
    wall.advance(2 * 3600)
    again = asyncio.run(workers(tight, staging_url, wall, 1))
    assert again[0].budget_spent
    assert requests_sent(sandbox) == budget

    # After midnight UTC: a new AppZen day, the rest is delivered once.
    wall.advance(3600)
    resumed = asyncio.run(workers(tight, staging_url, wall, 2))

    # Two workers at once: one may skip what the other holds (``partial``, #14); neither fails.
    assert all(s.status in {"succeeded", "partial"} and not s.fatal for s in resumed)
    assert sandbox.state.response_counts() == {201: len(valid)}  # nothing sent twice
    assert set(sandbox.state.invoices()) == set(valid)  # nothing lost
    with StagingStore.open(staging_url, now=wall) as store:
        assert store.count_by_state(NAME) == {"sent": len(valid)}
        usage = store.budget_usage(tight)
        assert (usage.day, usage.used) == ("2026-12-04", len(valid) - budget)
