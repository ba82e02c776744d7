"""Prefect states follow the truth: a source failure (the ERP down) or an AppZen outage ends the
flow run ``Failed`` (never Completed), with the run's one-line reason logged at ERROR, its
staging run recorded ``failed`` with that reason and its artifact saying it stopped."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prefect.client.schemas.objects import Log

from flows.backfill import backfill, backfill_partition
from flows.nightly import nightly_sync
from flows.retry import retry_failed
from flows.status import status_sync
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs.store import open_store
from pipeline.settings import Settings
from pipeline.staging.records import RunRecord
from tests.flows.helpers import MAPPING, artifact_data, counts_of, flow_run_id, logs_of
from tests.load.sync_helpers import expected

pytestmark = pytest.mark.prefect

STORED_BEFORE_TERM = 12
"""Invoices AppZen holds when SIGTERM is sent: past the first batch of 10, far from the 60."""


def remove_erp(settings: Settings) -> Path:
    """Take the sample ERP (SQLite) away; its path."""
    assert settings.erp_database_url is not None
    erp = Path(settings.erp_database_url.get_secret_value().removeprefix("sqlite:///"))
    erp.unlink()
    return erp


def errors(logs: list[Log]) -> list[str]:
    return [log.message for log in logs if log.level == logging.ERROR]


def assert_failed_run_recorded(settings: Settings, flow: str, *phrases: str) -> str:
    """The newest staging run is ``flow``, ``failed``, with a reason naming ``phrases``."""
    store = open_store(settings)
    try:
        run = store.list_runs(1)[0]
    finally:
        store.close()
    assert (run.flow, run.status) == (flow, "failed"), run
    assert run.reason is not None
    for phrase in phrases:
        assert phrase in run.reason, run.reason
    return run.reason


async def test_nightly_with_the_erp_down_ends_failed_with_the_reason_at_error(
    flow_env: Settings,
) -> None:
    erp = remove_erp(flow_env)

    state = await nightly_sync(mapping=MAPPING, return_state=True)

    assert state.is_failed(), state
    reason = assert_failed_run_recorded(flow_env, "sync", str(erp), "does not exist")
    assert reason in (state.message or "")
    logged = errors(await logs_of(flow_run_id(state)))
    assert any(reason in line for line in logged), logged
    summary = (await artifact_data("nightly-sample-erp-summary")).replace("\\", "")
    assert "does not exist" in summary


async def test_status_sync_with_the_erp_down_ends_failed(flow_env: Settings) -> None:
    remove_erp(flow_env)

    state = await status_sync(mapping=MAPPING, return_state=True)

    assert state.is_failed(), state
    reason = assert_failed_run_recorded(flow_env, "status_sync", "does not exist")
    assert any(reason in line for line in errors(await logs_of(flow_run_id(state))))


async def test_a_backfill_partition_with_the_erp_down_ends_failed(flow_env: Settings) -> None:
    remove_erp(flow_env)

    state = await backfill_partition(mapping=MAPPING, index=1, global_limit=None, return_state=True)

    assert state.is_failed(), state
    reason = assert_failed_run_recorded(flow_env, "backfill", "does not exist")
    assert any(reason in line for line in errors(await logs_of(flow_run_id(state))))


async def test_nightly_with_appzen_unreachable_ends_failed_with_the_outage_at_error(
    flow_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed port; the breaker's window tuned to 3 s (its twins at the default 30 s, in real
    time: tests/cli/test_outage.py, and a deployed nightly on a real server:
    tests/flows/test_server_stops.py)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    monkeypatch.setenv("APPZEN_BASE_URL", f"http://127.0.0.1:{port}/dictionary-data-services")
    monkeypatch.setenv("APPZEN_SANDBOX", "true")
    monkeypatch.setenv("APPZEN_OUTAGE_WINDOW", "3")

    state = await nightly_sync(mapping=MAPPING, return_state=True)

    assert state.is_failed(), state
    reason = assert_failed_run_recorded(flow_env, "sync", f"127.0.0.1:{port}", "nothing lost")
    assert reason.startswith("AppZen unreachable")
    assert any(reason in line for line in errors(await logs_of(flow_run_id(state))))


async def run_nightly(**more: Any) -> Any:
    return await nightly_sync(mapping=MAPPING, **more)


async def run_partition(**more: Any) -> Any:
    return await backfill_partition(mapping=MAPPING, global_limit=None, **more)


FLOWS: dict[str, tuple[Callable[..., Awaitable[Any]], str]] = {
    "nightly": (run_nightly, "sync"),
    "backfill partition": (run_partition, "backfill"),
}
"""The flows whose sending run stops cleanly on SIGTERM, and the staging flow of that run."""


@pytest.mark.parametrize("name", sorted(FLOWS))
async def test_a_sigterm_stops_the_sync_cleanly_and_ends_the_flow_run_cancelled(
    flow_env: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """SIGTERM (what Prefect sends a flow run it cancels) mid-run: the run stops cleanly
    (``cancelled``, what was out recorded, nothing claimed), the flow run ends Cancelled, and
    the next run sends the rest, each invoice once."""
    run_flow, kind = FLOWS[name]
    monkeypatch.setenv("BATCH_SIZE", "10")
    monkeypatch.setenv("APPZEN_MAX_CONCURRENCY", "4")
    sandbox.state.configure(latency_ms=100.0)
    sent = threading.Event()

    def terminate_mid_sync() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(sandbox.state.invoices()) < STORED_BEFORE_TERM:
            time.sleep(0.01)
        handler = signal.getsignal(signal.SIGTERM)
        if getattr(handler, "__name__", "") == "_sighandler_noop":  # the clean stop listens
            os.kill(os.getpid(), signal.SIGTERM)
            sent.set()

    killer = threading.Thread(target=terminate_mid_sync, daemon=True)
    killer.start()
    state = await run_flow(return_state=True)
    killer.join(5)
    sandbox.state.configure(latency_ms=0.0)

    assert sent.is_set(), "SIGTERM was not sent while the sync listened"
    assert state.is_cancelled(), state
    assert "cancelled: SIGTERM received" in (state.message or "")
    store = open_store(flow_env)
    try:
        run = store.list_runs(1)[0]
        assert (run.flow, run.status) == (kind, "cancelled"), run
        held = [r for r in store.invoices_in_state("sample_erp", "pending", 1000) if r.claimed_by]
        assert held == []
    finally:
        store.close()
    stored = len(sandbox.state.invoices())

    again = await run_flow()

    counts = again["sync"]["counts"] if "sync" in again else again["counts"]
    assert counts["unchanged"] == stored
    assert {invoice.versions for invoice in sandbox.state.invoices().values()} == {1}


def sigterm_once(condition: Callable[[], bool]) -> tuple[threading.Thread, threading.Event]:
    """A thread that sends this process SIGTERM once ``condition`` holds, if a clean stop
    listens then (Prefect's own handler would end the flow run at once); its 'sent' event."""
    sent = threading.Event()

    def terminate() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not condition():
            time.sleep(0.01)
        handler = signal.getsignal(signal.SIGTERM)
        if getattr(handler, "__name__", "") == "_sighandler_noop":  # the clean stop listens
            os.kill(os.getpid(), signal.SIGTERM)
            sent.set()

    thread = threading.Thread(target=terminate, daemon=True)
    thread.start()
    return thread, sent


def newest_run(settings: Settings) -> RunRecord:
    store = open_store(settings)
    try:
        return store.list_runs(1)[0]
    finally:
        store.close()


@pytest.mark.parametrize("flow", ["status-sync", "nightly"])
async def test_a_sigterm_stops_the_status_push_cleanly_and_ends_the_flow_run_cancelled(
    flow_env: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, flow: str
) -> None:
    """SIGTERM while a ``status-sync`` flow run (or a nightly's status push) pushes: the pushes
    out finish and are recorded, the run is ``cancelled``, the flow run ends Cancelled, and
    the next status-sync pushes the rest, each status once."""
    await nightly_sync(mapping=MAPPING, status_sync=False)  # invoices with statuses to push
    monkeypatch.setenv("APPZEN_MAX_CONCURRENCY", "4")
    sandbox.state.configure(latency_ms=100.0)
    thread, sent = sigterm_once(lambda: len(sandbox.state.pushes()) >= STORED_BEFORE_TERM)

    if flow == "nightly":
        state = await nightly_sync(mapping=MAPPING, return_state=True)
    else:
        state = await status_sync(mapping=MAPPING, return_state=True)
    thread.join(5)
    sandbox.state.configure(latency_ms=0.0)

    assert sent.is_set(), "SIGTERM was not sent while the status push listened"
    assert state.is_cancelled(), state
    assert "status-sync run" in (state.message or ""), state.message
    assert "cancelled: SIGTERM received" in (state.message or "")
    run = newest_run(flow_env)
    assert (run.flow, run.status) == ("status_sync", "cancelled"), run
    before = len(sandbox.state.pushes())

    again = await status_sync(mapping=MAPPING)

    pushes = Counter(push.invoice_id for push in sandbox.state.pushes())
    assert set(pushes.values()) == {1}, f"a status pushed twice: {pushes}"
    counts = counts_of(again)
    assert counts["pushed"] + counts.get("pushed_error", 0) == len(pushes) - before, counts
    assert counts.get("repushed_after_crash", 0) == 0, counts


async def test_a_sigterm_stops_retry_failed_cleanly_and_ends_the_flow_run_cancelled(
    flow_env: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid = expected(flow_env)
    suppliers = sorted({mapped.invoice.supplier_id for mapped in valid.values()})
    sandbox.state.configure(unknown_suppliers=suppliers)  # AppZen refuses every invoice
    first = await nightly_sync(mapping=MAPPING, status_sync=False)
    sandbox.state.configure(unknown_suppliers=[])
    refused = counts_of(first["sync"])["failed_appzen"]
    assert refused == len(valid) > 2 * STORED_BEFORE_TERM, first
    assert sandbox.state.invoices() == {}
    monkeypatch.setenv("BATCH_SIZE", "10")
    monkeypatch.setenv("APPZEN_MAX_CONCURRENCY", "4")
    sandbox.state.configure(latency_ms=100.0)
    thread, sent = sigterm_once(lambda: len(sandbox.state.invoices()) >= STORED_BEFORE_TERM)

    state = await retry_failed(mapping=MAPPING, return_state=True)
    thread.join(5)
    sandbox.state.configure(latency_ms=0.0)

    assert sent.is_set(), "SIGTERM was not sent while the retry listened"
    assert state.is_cancelled(), state
    assert "cancelled: SIGTERM received" in (state.message or "")
    run = newest_run(flow_env)
    assert (run.flow, run.status) == ("retry_failed", "cancelled"), run
    stored = len(sandbox.state.invoices())
    assert stored < refused

    again = await retry_failed(mapping=MAPPING)

    counts = counts_of(again)
    assert counts.get("busy", 0) == 0, counts
    assert len(sandbox.state.invoices()) == refused
    assert {invoice.versions for invoice in sandbox.state.invoices().values()} == {1}


async def test_a_sigterm_stops_a_local_backfill_cleanly_and_ends_the_flow_run_cancelled(
    flow_env: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while a backfill's partitions run in its own process: every partition stops
    cleanly, the backfill's staging run and its partitions' are ``cancelled``, nothing is left
    claimed, the flow run ends Cancelled, and a rerun sends the rest, each invoice once."""
    monkeypatch.setenv("BATCH_SIZE", "10")
    monkeypatch.setenv("APPZEN_MAX_CONCURRENCY", "4")
    sandbox.state.configure(latency_ms=100.0)
    thread, sent = sigterm_once(lambda: len(sandbox.state.invoices()) >= STORED_BEFORE_TERM)

    state = await backfill(mapping=MAPPING, partitions=2, return_state=True)
    thread.join(5)
    sandbox.state.configure(latency_ms=0.0)

    assert sent.is_set(), "SIGTERM was not sent while the partitions listened"
    assert state.is_cancelled(), state
    assert "cancelled: SIGTERM received" in (state.message or "")
    store = open_store(flow_env)
    try:
        runs = store.list_runs(10)
        held = [r for r in store.invoices_in_state("sample_erp", "pending", 1000) if r.claimed_by]
    finally:
        store.close()
    assert len(runs) >= 2, runs  # the backfill and its partition(s)
    assert {(run.flow, run.status) for run in runs} == {("backfill", "cancelled")}, runs
    assert held == []
    stored = len(sandbox.state.invoices())
    assert stored < len(expected(flow_env))

    rows = await backfill(mapping=MAPPING, partitions=2)

    assert {row["state"] for row in rows} == {"Completed"}, rows
    assert set(sandbox.state.invoices()) == set(expected(flow_env))
    assert {invoice.versions for invoice in sandbox.state.invoices().values()} == {1}
