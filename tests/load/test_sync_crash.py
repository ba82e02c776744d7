"""Crash safety: a sync killed with SIGKILL mid-run is finished by one rerun started at once with
the default lease (the dead run's claims are taken over: its process is gone), and then AppZen
(the sandbox) and staging agree invoice by invoice; no invoice is recorded sent that AppZen never
got, and every repeat AppZen received is counted."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, touch
from pipeline.devkit.sandbox import SandboxServer, StoredInvoice
from pipeline.jobs import sync as sync_job
from pipeline.load.sync import SyncJob
from pipeline.runtime import stop
from pipeline.settings import Settings
from pipeline.staging import InvoiceRecord, StagingStore
from pipeline.staging.owners import DEFAULT_LEASE_S
from pipeline.summary import RunSummary
from tests.load.crash_worker import BATCH_SIZE
from tests.load.sync_helpers import (
    NAME,
    REPO,
    assert_counts_add_up,
    expected,
    options,
    poll,
    records,
    run_sync,
    same_json,
    settle,
)

WORKER = Path(__file__).with_name("crash_worker.py")
KILL_AT = 15
"""Invoices the sandbox must hold before the worker is killed: past the first batch of 10."""


def spawn_worker(sandbox: SandboxServer, erp_url: str, staging_url: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, str(WORKER), sandbox.base_url, erp_url, staging_url]
    return subprocess.Popen(
        [*command, str(DEFAULT_LEASE_S)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def kill_mid_run(worker: subprocess.Popen[bytes], sandbox: SandboxServer) -> None:
    def mid_run() -> bool:
        if worker.poll() is not None:
            out, err = worker.communicate()
            raise AssertionError(f"the worker ended before the kill: {out!r} {err[-2000:]!r}")
        return len(sandbox.state.invoices()) >= KILL_AT

    try:
        poll(mid_run, 60, f"the worker sending {KILL_AT} invoices")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
    assert worker.returncode == -signal.SIGKILL


def test_a_sync_killed_mid_run_is_finished_by_reruns_without_losing_or_inventing_sends(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    erp: tuple[str, GenerationReport],
) -> None:
    sandbox.state.configure(latency_ms=150)
    staging_url = settings.staging_database_url.get_secret_value()
    worker = spawn_worker(sandbox, erp[0], staging_url)

    kill_mid_run(worker, sandbox)
    settle(sandbox)
    sandbox.state.configure(latency_ms=0)
    at_kill = sandbox.state.invoices()
    staged = {key: store.get_invoice(NAME, key) for key in expected(settings)}
    assert_only_acknowledged_sends_recorded(staged, at_kill)
    lost_acks = {key for key in at_kill if _uuid(staged[key]) is None}
    held = {key for key, record in staged.items() if record and record.claimed_by}
    assert lost_acks, "no invoice was stored by the sandbox and not yet recorded: kill later"
    assert held
    assert len(held) <= 2 * BATCH_SIZE
    changed = touch(erp[0], count=8, seed=3).document_nos
    valid = expected(settings)

    rerun = run_sync(options(), settings, store)  # at once, default lease

    assert (rerun.status, rerun.counts["busy"]) == ("succeeded", 0)
    assert store.count_by_state(NAME) == {"sent": len(valid)}
    [crashed] = [run for run in store.list_runs(10) if run.id != rerun.run_id]
    assert crashed.status == "crashed"
    assert crashed.reason == f"crashed: its process {worker.pid} on {crashed.host} no longer exists"
    assert crashed.counts["left_claimed"] == len(held)
    stored = sandbox.state.invoices()
    assert set(stored) == set(valid)
    for key, record in records(store, valid).items():
        assert record.state == "sent"
        assert record.uuid == stored[key].uuid
        assert record.acked_payload == valid[key].payload
        assert same_json(stored[key].payload, valid[key].payload)  # the latest payload
        assert record.claimed_by is None
    for key in lost_acks:
        record = records(store, {key})[key]
        assert record.resent_after_crash == 1
        assert record.appzen_status == "UPDATED"
        assert stored[key].uuid == at_kill[key].uuid
        assert stored[key].versions >= 2
    assert rerun.counts["resent_after_crash"] == len(lost_acks)
    # what AppZen received: every version staging did not record is one resend counted
    unrecorded = sum(
        invoice.versions - records(store, {k})[k].send_count for k, invoice in stored.items()
    )
    assert unrecorded == len(lost_acks) == rerun.counts["resent_after_crash"]
    assert (
        rerun.counts["resent_after_lost_answer"] == rerun.counts["resent_after_other_worker"] == 0
    )
    for key in changed & set(at_kill):  # sent before the crash, changed after: sent again
        assert stored[key].versions >= 2
    assert_counts_add_up(rerun)


def assert_only_acknowledged_sends_recorded(
    staged: dict[str, InvoiceRecord | None], stored: dict[str, StoredInvoice]
) -> None:
    """At the crash: every invoice staging recorded sent is in the sandbox, uuid and payload."""
    recorded = {key: r for key, r in staged.items() if r is not None and r.uuid is not None}
    assert recorded, "the dead run recorded no batch: kill it later"
    for key, record in recorded.items():
        assert record.state == "sent"
        assert stored[key].uuid == record.uuid
        assert same_json(stored[key].payload, record.acked_payload or b"")
    unacknowledged = [r for r in staged.values() if r is not None and r.uuid is None]
    assert all(r.state == "pending" and r.send_count == 0 for r in unacknowledged)


def _uuid(record: InvoiceRecord | None) -> str | None:
    return None if record is None else record.uuid


class Interrupted(Exception):
    """Raised from the progress callback: a run stopped by something other than AppZen."""


def test_an_interrupted_run_frees_its_claims_so_the_next_run_need_not_wait(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    sandbox.state.configure(latency_ms=100)  # the second batch is still posting when we stop
    job = SyncJob(options(), settings, store=store)

    def stop(summary: RunSummary) -> None:
        raise Interrupted(f"stopped after {summary.counts['extracted']} invoices")

    job.on_progress = stop
    with pytest.raises(Interrupted):
        asyncio.run(job.run())
    settle(sandbox)
    sandbox.state.configure(latency_ms=0)

    run = store.get_run(job.summary.run_id or 0)
    assert run is not None
    assert run.status == "interrupted"
    valid = expected(settings)
    staged = [r for r in (store.get_invoice(NAME, key) for key in valid) if r is not None]
    assert len(staged) > settings.batch_size  # the second batch was claimed too
    assert all(r.claimed_by is None for r in staged)

    rerun = run_sync(options(), settings, store)  # default lease

    assert rerun.counts["busy"] == 0
    assert store.count_by_state(NAME) == {"sent": len(valid)}


def test_a_stop_request_mid_run_records_what_went_out_and_cancels_the_run(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    """SIGTERM's in-process twin (the real signal: tests/reliability/test_cli_sigterm.py): a
    stop request after the first batch lets the batch still posting finish and be recorded,
    frees every claim, writes the report and closes the run ``cancelled``."""
    sandbox.state.configure(latency_ms=100)  # the second batch is still posting when we stop

    def stop_once(summary: RunSummary) -> None:
        if summary.counts["created"]:  # the first batch is recorded
            stop.request_stop("SIGTERM received")

    async def cancelled_run() -> RunSummary:
        return await stop.sigterm_stops_runs(
            sync_job.run(settings, store, options(), on_progress=stop_once)
        )

    summary = asyncio.run(cancelled_run())
    settle(sandbox)
    sandbox.state.configure(latency_ms=0)

    assert (summary.status, summary.cancelled) == ("cancelled", True), summary.as_dict()
    assert (summary.fatal or "").startswith("cancelled: SIGTERM received")
    assert sorted(summary.reports) == ["csv", "html"]
    run = store.get_run(summary.run_id or 0)
    assert run is not None
    assert (run.status, run.reason) == ("cancelled", summary.fatal)
    valid = expected(settings)
    staged = [r for r in (store.get_invoice(NAME, key) for key in valid) if r is not None]
    assert all(r.claimed_by is None for r in staged)
    stored = sandbox.state.invoices()
    assert {r.invoice_id: r.uuid for r in staged if r.uuid} == {
        key: invoice.uuid for key, invoice in stored.items()
    }, "every request out finished and was recorded"
    assert 0 < len(stored) < len(valid)
    assert stop.requested() is None, "the request ends with the work it stopped"

    rerun = run_sync(options(), settings, store)

    assert (rerun.status, rerun.counts["busy"]) == ("succeeded", 0)
    assert store.count_by_state(NAME) == {"sent": len(valid)}
    assert {invoice.versions for invoice in sandbox.state.invoices().values()} == {1}
