"""The ``status-sync`` deployment of prefect.yaml on a real Prefect server pushes a payment that
left the invoice's ``updated_at`` as it was (#17): exactly that status, once; a rerun pushes
nothing.

Real processes: a Prefect server (PostgreSQL database), the ``status-sync`` deployment made by
``prefect deploy`` from this checkout, one ``prefect worker`` of the process pool prefect.yaml
names. The sample ERP and staging are SQLite files the worker's flow runs and this test share;
the sandbox runs in the test process, on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from pipeline.devkit.sample_erp import generate, pay
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import load_settings
from pipeline.staging import StagingStore
from tests.flows.helpers import MAPPING, REPO, updated_at
from tests.flows.prefect_processes import (
    PREFECT,
    client_env,
    prefect_database,
    prefect_server,
    run_cli,
    start,
    stop,
)
from tests.flows.server_client import POOL, create_process_pool, final_state
from tests.status.read_helpers import status_sync, sync

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(420)]

DEPLOYMENT = "status-sync/status-sync"


async def _run_deployment(api_url: str, seconds: float = 240) -> tuple[str, str]:
    """Start a run of the deployed status-sync (its default parameters) and poll it to its
    final state: ``(state name, message)``."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name(DEPLOYMENT)
            run = await client.create_flow_run_from_deployment(deployment.id)
    return await final_state(api_url, run.id, seconds)


async def test_the_deployed_status_sync_pushes_a_quiet_payment_exactly_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    staging_url = f"sqlite:///{tmp_path / 'staging.db'}"
    generate(erp_url, invoices=40, seed=11)
    env = {
        "APPZEN_BASE_URL": sandbox.base_url,
        "ERP_DATABASE_URL": erp_url,
        "STAGING_DATABASE_URL": staging_url,
        "REPORTS_DIR": str(tmp_path / "reports"),
        "APPZEN_RATE_LIMIT": "200",
    }
    settings = load_settings(**{name.lower(): value for name, value in env.items()})
    with StagingStore.open(staging_url) as store:  # what the nights before left: all told
        await sync(settings, store, Path(MAPPING))
        told = await status_sync(settings, store, Path(MAPPING))
    assert told.status == "succeeded"
    before = updated_at(erp_url)
    told_pushes = len(sandbox.state.pushes())
    (paid,) = pay(erp_url, count=1).document_nos
    assert updated_at(erp_url) == before, "a payment leaves the invoice's updated_at"

    with prefect_database() as database, prefect_server(tmp_path, database, REPO) as api_url:
        await create_process_pool(api_url)
        deploy_env = client_env(api_url, tmp_path / "deploy-home", {})
        run_cli(["--no-prompt", "deploy", "--name", "status-sync"], deploy_env, REPO, 240)
        worker_env = client_env(
            api_url, tmp_path / "worker-home", {**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}
        )
        args = [PREFECT, "worker", "start", "--pool", POOL, "--name", "status-worker"]
        worker = start("worker", args, worker_env, tmp_path, REPO)
        try:
            first = await _run_deployment(api_url)
            after_first = sandbox.state.pushes()[told_pushes:]
            second = await _run_deployment(api_url)
        except BaseException:
            print(worker.tail())
            raise
        finally:
            stop(worker)  # before the server goes

    assert first[0] == "Completed", (first, worker.tail())
    assert [(push.invoice_id, push.body["invoice_status"]) for push in after_first] == [
        (paid, "PAID")
    ]
    assert after_first[0].body["appzen_invoice_state"] == "CREATED"
    assert second[0] == "Completed", (second, worker.tail())
    assert len(sandbox.state.pushes()) == told_pushes + 1, "the rerun pushed nothing"
    with StagingStore.open(staging_url) as store:
        runs = [run for run in store.list_runs(10) if run.flow == "status_sync"]
        staged = store.get_invoice("sample_erp", paid)
    assert [run.status for run in runs] == ["succeeded"] * 3
    assert staged is not None
    assert staged.pushed_status == "PAID"
