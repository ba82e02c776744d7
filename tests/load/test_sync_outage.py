"""AppZen unreachable: every flow that posts (sync, retry-failed, a backfill partition,
status-sync) stops as an outage after APPZEN_OUTAGE_WINDOW (the default, 30 s, in virtual time),
its run ``failed`` with one line naming the host and the last error, not one invoice written off
as failed (they stay pending, unclaimed), and a rerun once AppZen answers delivers everything.
The real-time twins (a server that never answers, at the default window, and the exit code) are
in tests/cli/test_outage.py."""

from __future__ import annotations

import socket

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import backfill as backfill_job
from pipeline.jobs import retry as retry_job
from pipeline.jobs import sync as sync_job
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary
from tests.load.sync_helpers import (
    MAPPING,
    NAME,
    assert_counts_add_up,
    expected,
    options,
    records,
    tuned,
)
from tests.support.clock import FakeClock

NOTE = "nothing lost: the invoices stay pending; rerun when AppZen answers"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return port


def down(settings: Settings, port: int) -> Settings:
    """``settings`` pointed at a closed port: AppZen unreachable, default outage window."""
    assert settings.appzen_outage_window == 30.0
    return tuned(settings, appzen_base_url=f"http://127.0.0.1:{port}/dictionary-data-services")


async def run_down(job_options: SyncOptions, settings: Settings, store: StagingStore) -> RunSummary:
    clock = FakeClock(settle=0.005)  # each call's first connect is refused before time moves on
    summary = await SyncJob(job_options, settings, store=store, clock=clock).run()
    assert clock.monotonic() < 60.0, "stopped within a minute of virtual time"
    return summary


def assert_stopped_as_outage(stopped: RunSummary, store: StagingStore, port: int) -> None:
    """Failed with the one line, no failed row for anything unanswered, nothing claimed."""
    assert stopped.status == "failed"
    assert stopped.outage
    fatal = stopped.fatal or ""
    assert "\n" not in fatal
    assert fatal.startswith(f"AppZen unreachable: no answer from 127.0.0.1:{port} for 30 s")
    assert "ConnectError" in fatal
    assert fatal.endswith(NOTE)
    assert stopped.counts["failed_retries"] == 0
    assert not [f for f in stopped.failures if f.stage == "retries_exhausted"]
    run = store.get_run(stopped.run_id or 0)
    assert run is not None
    assert run.status == "failed"
    assert run.watermark is None
    assert not [f for f in store.failures_for_run(run.id) if f.failure.stage == "retries_exhausted"]
    assert store.count_by_state(NAME).get("failed_retryable", 0) == 0
    staged = [store.get_invoice(NAME, key) for key in store.failed_invoice_ids(NAME)]
    assert all(r is None or r.claimed_by is None for r in staged)


async def test_sync_with_appzen_port_closed_stops_as_an_outage_and_a_rerun_delivers(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, closed_port: int
) -> None:
    valid = expected(settings)

    stopped = await run_down(options(), down(settings, closed_port), store)

    assert_stopped_as_outage(stopped, store, closed_port)
    assert stopped.counts["left_pending"] == stopped.counts["planned_create"] > 0
    staged = records(store, {key for key in valid if store.get_invoice(NAME, key)})
    assert len(staged) == stopped.counts["planned_create"]
    assert all(r.state == "pending" and r.claimed_by is None for r in staged.values())
    assert_counts_add_up(stopped)

    rerun = await sync_job.run(settings, store, options())

    assert rerun.status == "succeeded"
    assert rerun.counts["created"] == len(valid)
    assert set(sandbox.state.invoices()) == set(valid)
    assert store.count_by_state(NAME) == {"sent": len(valid)}


async def test_5xx_on_every_request_is_an_outage_too(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    sandbox.state.configure(fail_rate=1.0)

    stopped = await SyncJob(options(), settings, store=store, clock=FakeClock(settle=0.005)).run()

    assert stopped.status == "failed"
    assert stopped.outage
    assert "HTTP 500" in (stopped.fatal or "")
    assert stopped.counts["failed_retries"] == 0
    assert stopped.counts["left_pending"] == stopped.counts["planned_create"] > 0
    assert sandbox.state.invoices() == {}
    sandbox.state.configure(fail_rate=0.0)
    rerun = await sync_job.run(settings, store, options())
    assert rerun.counts["created"] == len(valid)


async def test_retry_failed_with_appzen_port_closed_keeps_the_failures_to_retry(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, closed_port: int
) -> None:
    valid = expected(settings)
    supplier = valid[min(valid)].invoice.supplier_id
    refused = {key for key, m in valid.items() if m.invoice.supplier_id == supplier}
    sandbox.state.configure(unknown_suppliers=[supplier])
    await sync_job.run(settings, store, options())
    sandbox.state.configure(unknown_suppliers=[])
    scope = retry_job.scope(store, MAPPING)
    assert refused
    assert refused <= scope.keys

    stopped = await run_down(scope.options(), down(settings, closed_port), store)

    assert_stopped_as_outage(stopped, store, closed_port)
    assert stopped.counts["left_pending"] == len(refused)
    assert store.failed_invoice_ids(NAME) >= refused, "still there to retry"

    again = await retry_job.run(settings, store, retry_job.scope(store, MAPPING))

    assert again.counts["updated"] + again.counts["created"] == len(refused)
    assert set(sandbox.state.invoices()) == set(valid)


async def test_a_backfill_partition_with_appzen_port_closed_stops_as_an_outage(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, closed_port: int
) -> None:
    valid = expected(settings)
    plan = backfill_job.BackfillPlan(MAPPING)
    with backfill_job.parent_run(store, plan) as parent:
        [part] = plan.partitions_of(parent.id)
        stopped = await run_down(part.options(), down(settings, closed_port), store)
        parent.add(stopped)

    assert_stopped_as_outage(stopped, store, closed_port)
    assert stopped.historical
    parent_run = store.get_run(parent.id or 0)
    assert parent_run is not None
    assert parent_run.status == "failed"

    again = await backfill_job.run_partition(settings, store, part)

    assert again.counts["created"] == len(valid)
    assert {i.historical for i in sandbox.state.invoices().values()} == {(True,)}


async def test_status_sync_with_appzen_port_closed_stops_as_an_outage_and_pushes_later(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, closed_port: int
) -> None:
    valid = expected(settings)
    await sync_job.run(settings, store, options())
    assert sandbox.state.pushes() == []

    stopped = await run_status_sync(
        down(settings, closed_port), store, NAME, clock=FakeClock(settle=0.005)
    )

    assert stopped.status == "failed"
    assert stopped.outage
    assert (stopped.fatal or "").endswith(NOTE)
    assert stopped.failures == []
    assert stopped.counts["failed_status_sync"] == 0
    assert store.failures_for_run(stopped.run_id or 0) == []

    again = await run_status_sync(settings, store, NAME)

    assert again.status == "succeeded"
    assert again.counts["pushed"] + again.counts["pushed_error"] > 0
    pushed = {push.invoice_id for push in sandbox.state.pushes()}
    assert pushed <= set(valid)
    assert len(pushed) == again.counts["pushed"] + again.counts["pushed_error"]
