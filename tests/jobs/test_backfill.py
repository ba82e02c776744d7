"""The backfill job: a parent run for the backfill, each partition's run linked to it by id, so two
backfills of one mapping at once each find exactly their own partitions."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import backfill as backfill_job
from pipeline.jobs.backfill import BackfillPlan
from pipeline.jobs.store import open_store
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "sample_erp.yaml"
PLAN = BackfillPlan(MAPPING, date(2024, 1, 1), date(2025, 1, 31), partitions=3)


async def _backfill(settings: Settings, both_open: asyncio.Barrier) -> tuple[int, list[RunSummary]]:
    """One backfill of :data:`PLAN` in its own store (as another process would); its partitions
    start only once both backfills have their parent run."""
    store = open_store(settings)
    try:
        with backfill_job.parent_run(store, PLAN) as parent:
            await both_open.wait()
            for part in PLAN.partitions_of(parent.id):
                parent.add(await backfill_job.run_partition(settings, store, part))
        assert parent.id is not None
        return parent.id, parent.summaries
    finally:
        store.close()


async def _two_at_once(settings: Settings) -> list[tuple[int, list[RunSummary]]]:
    both_open = asyncio.Barrier(2)
    return list(await asyncio.gather(*(_backfill(settings, both_open) for _ in range(2))))


def test_two_backfills_of_one_mapping_at_once_each_see_only_their_own_partitions(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    (first, first_runs), (second, second_runs) = asyncio.run(_two_at_once(settings))

    parts = PLAN.partitions_of(None)
    for parent, summaries in ((first, first_runs), (second, second_runs)):
        ids = [summary.run_id for summary in summaries]
        assert [run.id for run in store.runs_of_parent(parent)] == ids
        found = backfill_job.partition_runs(store, parent)
        assert [found[part.bounds].id for part in parts] == ids  # same bounds, own runs
        rebuilt = backfill_job.summaries_of(store, parent, parts)
        assert [s.run_id for s in rebuilt if s is not None] == ids
        record = store.get_run(parent)
        assert record is not None
        # the other backfill may have held some invoices when a partition reached them
        partial = any(summary.status == "partial" for summary in summaries)
        status = "partial" if partial else "succeeded"
        assert (record.flow, record.status, record.historical) == ("backfill", status, True)
        assert record.parameters == PLAN.parameters()
        total = sum(summary.counts["extracted"] for summary in summaries)
        assert record.counts["extracted"] == total > 0
    assert not {s.run_id for s in first_runs} & {s.run_id for s in second_runs}
    assert min(s.run_id or 0 for s in first_runs + second_runs) > max(first, second)


def test_a_dry_run_records_no_parent_and_no_partition_runs(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    plan = BackfillPlan(MAPPING, date(2024, 1, 1), date(2024, 6, 30), partitions=2, dry_run=True)
    with backfill_job.parent_run(store, plan) as parent:
        for part in plan.partitions_of(parent.id):
            parent.add(asyncio.run(backfill_job.run_partition(settings, store, part)))

    assert parent.id is None
    assert [s.run_id for s in parent.summaries] == [None, None]
    assert store.list_runs() == []
    assert sandbox.state.invoices() == {}


def test_a_stopped_partition_fails_the_parent_and_an_error_interrupts_it(
    settings: Settings, store: StagingStore
) -> None:
    with backfill_job.parent_run(store, PLAN) as stopped:
        stopped.add(RunSummary(None, "sample_erp", "backfill", True, False, "failed"))
    with pytest.raises(KeyboardInterrupt), backfill_job.parent_run(store, PLAN) as interrupted:
        raise KeyboardInterrupt
    runs = {run.id: run.status for run in store.list_runs()}
    assert (runs[stopped.id or 0], runs[interrupted.id or 0]) == ("failed", "interrupted")
