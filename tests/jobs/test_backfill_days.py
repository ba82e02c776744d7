"""A backfill over several AppZen days shows its progress per day (read from staging): each day's
invoices sent, what was left after it and the budget used, the days before a resumed run first.
The AppZen day moves on a fake wall clock; the budget stops each day's run."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import backfill as backfill_job
from pipeline.jobs.backfill import BackfillPlan
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.backfilldays import BackfillDay
from tests.load.sync_helpers import MAPPING, expected, tuned
from tests.staging.helpers import FakeClock as WallClock

PLAN = BackfillPlan(MAPPING, date(2024, 1, 1), date(2025, 1, 31), partitions=2)


@pytest.fixture
def clean(settings: Settings, tmp_path: Path) -> Settings:
    """The test's settings over a sample ERP without dirty rows."""
    url = f"sqlite:///{tmp_path / 'clean-erp.db'}"
    generate(url, invoices=50, seed=9, dirty_share=0.0)
    return tuned(settings, erp_database_url=SecretStr(url))


async def _backfill(settings: Settings, store: StagingStore) -> int:
    """One backfill run of :data:`PLAN` through the job API, partitions in turn: its run id."""
    with backfill_job.parent_run(store, PLAN) as parent:
        for part in PLAN.partitions_of(parent.id):
            parent.add(await backfill_job.run_partition(settings, store, part))
    assert parent.id is not None
    return parent.id


def _day(store: StagingStore, settings: Settings, parent: int) -> list[BackfillDay]:
    return store.backfill_days(settings, parent)


def test_three_days_of_a_backfill_each_with_its_sent_left_and_budget(
    sandbox: SandboxServer, clean: Settings, tmp_path: Path
) -> None:
    total = len(expected(clean))
    budget = total // 3 + 1  # three days
    tight = tuned(clean, appzen_daily_budget=budget)
    wall = WallClock(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    runs = []
    with StagingStore.open(tight.staging_database_url.get_secret_value(), now=wall) as store:
        for _ in range(3):
            runs.append(asyncio.run(_backfill(tight, store)))
            if len(runs) == 1:
                [first] = _day(store, tight, runs[0])
                assert (first.day, first.sent, first.left) == ("2026-12-03", budget, None)
                assert first.budget_used == budget
                assert "not known yet" in "\n".join(backfill_job.day_lines(tight, store, runs[0]))
            wall.advance(24 * 3600)
        days = _day(store, tight, runs[-1])
        lines = backfill_job.day_lines(tight, store, runs[-1])

    assert sandbox.state.response_counts() == {201: total}  # nothing twice, nothing lost
    assert [d.number for d in days] == [1, 2, 3]
    assert [d.day for d in days] == ["2026-12-03", "2026-12-04", "2026-12-05"]
    assert [d.runs for d in days] == [(runs[0],), (runs[1],), (runs[2],)]
    assert [d.sent for d in days] == [budget, budget, total - 2 * budget]
    assert [d.left for d in days] == [total - budget, total - 2 * budget, 0]
    assert all(d.exact for d in days), "the backfill completed: what was left is known"
    assert [d.budget_used for d in days] == [d.sent for d in days]
    assert {d.budget_per_day for d in days} == {budget}
    assert (
        f"| 1 | 2026-12-03 | {runs[0]} | {budget} | {total - budget} | {budget} of {budget} |"
        in lines
    )


def test_a_backfill_done_in_a_day_shows_no_days_and_a_rerun_starts_afresh(
    sandbox: SandboxServer, clean: Settings
) -> None:
    wall = WallClock(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    with StagingStore.open(clean.staging_database_url.get_secret_value(), now=wall) as store:
        first = asyncio.run(_backfill(clean, store))
        assert backfill_job.day_lines(clean, store, first) == []
        wall.advance(3 * 24 * 3600)
        again = asyncio.run(_backfill(clean, store))  # sends nothing: all acknowledged
        [day] = _day(store, clean, again)

    assert (day.day, day.runs, day.sent, day.left) == ("2026-12-06", (again,), 0, 0)
