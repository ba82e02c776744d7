"""A nightly stopped on a real Prefect server, at the default settings.

Cancelled: an operator cancels a nightly mid-delivery, as ops would: ``prefect
flow-run cancel <id>``. The process worker sends the flow-run process SIGTERM (then SIGKILL after
its 30 s grace, prefect/runner/_process_manager.py); the sync stops cleanly well within that grace:
the flow run ends Cancelled, the staging run is ``cancelled`` in ``appzen-etl runs --json``, its
claims are freed, no invoice is written off as failed, and the next nightly, started at once,
delivers the rest so that AppZen holds every valid invoice exactly once.

AppZen unreachable (its port closed): the circuit breaker stops the sync after its default 30 s
window, the flow run ends Failed (never Completed) with the one-line reason, logged at ERROR on
the server, the staging run is ``failed`` with that reason and no invoice written off, and the next
nightly, once AppZen answers, delivers everything.

Real processes: a Prefect server (PostgreSQL database) shared by the module's tests, the
``nightly`` deployment made by ``prefect deploy`` from this checkout, one ``prefect worker`` of
the process pool per test (with that test's settings); the sandbox runs in this process. Every
pipeline setting is at its default (leases included) but the places; the sandbox's latency keeps
the run long enough to cancel mid-way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings

from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.staging import StagingStore
from tests.flows.helpers import MAPPING, REPO
from tests.flows.prefect_processes import (
    PREFECT,
    Process,
    client_env,
    free_port,
    prefect_database,
    prefect_server,
    run_cli,
    start,
    stop,
    wait_until,
)
from tests.flows.server_client import (
    FINAL,
    POOL,
    create_process_pool,
    final_state,
    flow_run_state,
    runs_json,
)

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(600)]

INVOICES = 300
LATENCY_MS = 1500.0
"""Each answer takes 1.5 s: 16 requests in flight (the default) deliver ~10 invoices/s, so the
nightly runs ~30 s and is cancelled mid-way; requests out at SIGTERM finish well within the
stop's 10 s grace."""
STORED_BEFORE_CANCEL = 40


async def _start_nightly(api_url: str, env: dict[str, str] | None = None) -> UUID:
    """A run of the deployed nightly; ``env``: settings of this run only (job variables)."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("nightly-sync/nightly")
            run = await client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"mapping": MAPPING},
                job_variables={"env": env} if env else None,
            )
    return run.id


async def _error_lines(api_url: str, run_id: UUID) -> list[str]:
    """The flow run's log lines at ERROR, as the server stored them."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return [log.message for log in logs if log.level == logging.ERROR]


@dataclass(frozen=True)
class _Server:
    """The module's Prefect server: its API, with the process pool and the ``nightly``
    deployment; the ops environment that made them."""

    api_url: str
    ops: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """One Prefect server (PostgreSQL database) for this module's tests, with the process pool
    and the ``nightly`` deployment made by ``prefect deploy`` (what an operator does once); each
    test starts its own worker with its own settings and stops it before the server goes."""
    folder = tmp_path_factory.mktemp("server")
    with prefect_database() as database, prefect_server(folder, database, REPO) as api_url:
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:  # not the tests'
            runner.run(create_process_pool(api_url))
        ops = client_env(api_url, folder / "ops-home", {})
        run_cli(["--no-prompt", "deploy", "--name", "nightly"], ops, REPO, 240)
        yield _Server(api_url, ops)


async def _delete_unfinished_runs(api_url: str) -> None:
    """Delete the server's flow runs that are not final: a run an earlier test left (it failed
    before its run ended) never reaches this test's worker."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            for run in await client.read_flow_runs():
                if run.state_name not in FINAL:
                    await client.delete_flow_run(run.id)


@dataclass(frozen=True)
class _Night:
    """A deployed nightly on a running server: its API, the ops and run settings, the worker."""

    api_url: str
    ops: dict[str, str]
    settings: dict[str, str]
    worker: Process
    clean: int
    """How many of the sample ERP's invoices are valid (what AppZen should end up holding)."""


@asynccontextmanager
async def _deployed_nightly(
    server: _Server, sandbox: SandboxServer, tmp_path: Path, invoices: int, *, seed: int
) -> AsyncIterator[_Night]:
    """A sample ERP of ``invoices`` and one worker of the module's server (pool and ``nightly``
    deployed), its settings this test's; the caller stops the worker (it may need it until its
    last assertion)."""
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    report = generate(erp_url, invoices=invoices, seed=seed)
    settings = {
        "APPZEN_BASE_URL": sandbox.base_url,
        "ERP_DATABASE_URL": erp_url,
        "STAGING_DATABASE_URL": f"sqlite:///{tmp_path / 'staging.db'}",
        "REPORTS_DIR": str(tmp_path / "reports"),
        "APPZEN_SANDBOX": "true",
    }
    await _delete_unfinished_runs(server.api_url)
    extra = {**settings, "PREFECT_WORKER_QUERY_SECONDS": "1"}
    worker_env = client_env(server.api_url, tmp_path / "worker-home", extra)
    args = [PREFECT, "worker", "start", "--pool", POOL, "--name", "night"]
    worker = start("worker", args, worker_env, tmp_path, REPO)
    yield _Night(server.api_url, server.ops, settings, worker, invoices - len(report.dirty))


async def test_prefect_flow_run_cancel_stops_the_nightly_cleanly_and_the_next_finishes(
    server: _Server, sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.configure(latency_ms=LATENCY_MS)
    async with _deployed_nightly(server, sandbox, tmp_path, INVOICES, seed=14) as night:
        api_url, ops, settings, worker = night.api_url, night.ops, night.settings, night.worker
        clean, staging_url = night.clean, night.settings["STAGING_DATABASE_URL"]
        try:
            first = await _start_nightly(api_url)
            await asyncio.to_thread(
                wait_until,
                lambda: len(sandbox.state.invoices()) >= STORED_BEFORE_CANCEL,
                240,
                "the nightly delivering its first invoices",
            )
            assert (await flow_run_state(api_url, first))[0] == "Running"
            await asyncio.to_thread(run_cli, ["flow-run", "cancel", str(first)], ops, REPO)
            name, message = await final_state(api_url, first, 120)
            assert name == "Cancelled", (name, message, worker.tail(80))
            stored = dict(sandbox.state.invoices())
            assert len(stored) < clean, "cancelled mid-delivery: the rest is left"
            [cancelled] = runs_json(settings, tmp_path)
            store = StagingStore.open(staging_url)
            try:
                states = store.count_by_state("sample_erp")
                held = [
                    r for r in store.invoices_in_state("sample_erp", "pending", 10_000)
                    if r.claimed_by
                ]  # fmt: skip
            finally:
                store.close()

            sandbox.state.configure(latency_ms=0.0)
            second = await _start_nightly(api_url)  # at once: no lease to wait out
            again = await final_state(api_url, second, 240)
            assert again[0] == "Completed", (again, worker.tail(80))
            finished = runs_json(settings, tmp_path)
        finally:
            stop(worker)

    # The flow's own Cancelled state and the run's own ``cancelled`` record: the clean stop ran
    # to its end before the worker's SIGKILL (30 s after SIGTERM) could come.
    assert "cancelled: SIGTERM received" in message, message
    assert (cancelled["flow"], cancelled["status"]) == ("sync", "cancelled"), cancelled
    assert str(cancelled["reason"]).startswith("cancelled: SIGTERM received"), cancelled
    assert held == [], "the cancelled run freed its claims"
    assert set(states) <= {"sent", "pending"}, f"nothing written off for the cancel: {states}"
    assert states.get("sent", 0) == len(stored), "every answer out at SIGTERM was recorded"
    counts = cancelled["counts"]
    assert isinstance(counts, dict)
    assert counts.get("retries_exhausted", 0) == 0, counts

    invoices = sandbox.state.invoices()
    assert len(invoices) == clean
    assert {record.versions for record in invoices.values()} == {1}, "each invoice sent once"
    syncs = [run for run in finished if run["flow"] == "sync"]
    assert [run["status"] for run in syncs] == ["succeeded", "cancelled"], finished
    rerun_counts = syncs[0]["counts"]
    assert isinstance(rerun_counts, dict)
    assert rerun_counts.get("busy", 0) == 0, rerun_counts
    assert rerun_counts.get("unchanged", 0) == len(stored), rerun_counts


async def test_an_appzen_outage_ends_the_deployed_nightly_failed_with_the_reason_at_error(
    server: _Server, sandbox: SandboxServer, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens: connection refused
    down = {"APPZEN_BASE_URL": f"http://127.0.0.1:{port}/dictionary-data-services"}
    async with _deployed_nightly(server, sandbox, tmp_path, 60, seed=15) as night:
        api_url, settings, worker = night.api_url, night.settings, night.worker
        clean, staging_url = night.clean, night.settings["STAGING_DATABASE_URL"]
        try:
            first = await _start_nightly(api_url, down)
            name, message = await final_state(api_url, first, 240)
            assert name == "Failed", (name, message, worker.tail(80))
            errors = await _error_lines(api_url, first)
            [failed] = runs_json(settings, tmp_path)
            store = StagingStore.open(staging_url)
            try:
                states = store.count_by_state("sample_erp")
            finally:
                store.close()

            second = await _start_nightly(api_url)  # AppZen answers again
            again = await final_state(api_url, second, 240)
            assert again[0] == "Completed", (again, worker.tail(80))
        finally:
            stop(worker)

    reason = str(failed["reason"])
    assert (failed["flow"], failed["status"]) == ("sync", "failed"), failed
    assert reason.startswith(f"AppZen unreachable: no answer from 127.0.0.1:{port}"), reason
    assert "for 30 s" in reason, reason  # the default window
    assert "nothing lost" in reason, reason
    assert reason in message, message
    assert any(reason in line for line in errors), errors
    assert set(states) <= {"pending"}, f"nothing written off for the outage: {states}"
    counts = failed["counts"]
    assert isinstance(counts, dict)
    assert counts.get("failed_retries", 0) == counts.get("failed_appzen", 0) == 0, counts
    invoices = sandbox.state.invoices()
    assert len(invoices) == clean
    assert {record.versions for record in invoices.values()} == {1}
