"""Crash safety: a sync killed with SIGKILL mid-run is finished by reruns, and then AppZen (the
sandbox) and staging agree invoice by invoice; no invoice is recorded sent that AppZen never got."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, touch
from pipeline.devkit.sandbox import SandboxServer, StoredInvoice
from pipeline.load.sync import SyncJob
from pipeline.settings import Settings
from pipeline.staging import InvoiceRecord, StagingStore
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
LEASE_SECONDS = 2.0
"""Short, so the reruns see the dead run's claims expire within the test."""
KILL_AT = 15
"""Invoices the sandbox must hold before the worker is killed: past the first batch of 10."""


def spawn_worker(sandbox: SandboxServer, erp_url: str, staging_url: str) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, str(WORKER), sandbox.base_url, erp_url, staging_url]
    return subprocess.Popen(
        [*command, str(LEASE_SECONDS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
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


def rerun_until_done(
    settings: Settings, store: StagingStore, total: int
) -> list[tuple[RunSummary, datetime]]:
    """Nightly reruns until every valid invoice is sent (busy ones wait for their lease); each
    run's summary and when it ended."""
    runs: list[tuple[RunSummary, datetime]] = []

    def done() -> bool:
        summary = run_sync(options(lease_seconds=LEASE_SECONDS), settings, store)
        runs.append((summary, datetime.now(UTC)))
        return store.count_by_state(NAME) == {"sent": total}

    poll(done, 10 * LEASE_SECONDS, "the reruns sending every invoice")
    return runs


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

    runs = rerun_until_done(settings, store, len(valid))
    summaries = [summary for summary, _ in runs]

    expiry = {key: record.claim_expires_at for key, record in staged.items() if record}
    live = {key for key in held if (expiry[key] or runs[0][1]) > runs[0][1]}
    assert summaries[0].counts["busy"] >= len(live)  # claims still live were left alone
    assert all(s.status == "succeeded" for s in summaries)
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
    assert sum(s.counts["resent_after_crash"] for s in summaries) == len(lost_acks)
    for key in changed & set(at_kill):  # sent before the crash, changed after: sent again
        assert stored[key].versions >= 2
    for summary in summaries:
        assert_counts_add_up(summary)


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

    rerun = run_sync(options(), settings, store)  # default lease: 300 s

    assert rerun.counts["busy"] == 0
    assert store.count_by_state(NAME) == {"sent": len(valid)}
