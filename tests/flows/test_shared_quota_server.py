"""One AppZen quota for every flow on a real Prefect server: a nightly run by a worker overlaps a
spread backfill's partitions, all taking from the global concurrency limit ``appzen-api``, created
as the README says (limit and decay the quota). Before, the nightly paced itself beside the
backfill and the two together drew 429s (29 of them, 32/s on a 30/s quota).

Real processes as in :mod:`tests.flows.test_multi_worker` (whose helpers this reuses): a Prefect
server on PostgreSQL, the ``nightly`` and ``backfill-partition`` deployments of prefect.yaml, two
process workers; the sandbox (quota :data:`QUOTA`, which stamps every accepted request) and the
parent ``backfill`` flow run in the test process.
"""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.deployments import arun_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.backfill import backfill
from flows.limits import DEFAULT_LIMIT
from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.staging import StagingStore
from tests.flows.helpers import MAPPING, REPO
from tests.flows.prefect_processes import client_env, prefect_database, prefect_server, run_cli
from tests.flows.test_multi_worker import (
    POOL,
    _drain,
    _settings_env,
    _workers,
    assert_bursts_bounded,
    staging_url,
)

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(480)]

QUOTA = 30  # requests/s: the sandbox's token bucket (burst: one second of it) and the limit
INVOICES = 400
__all__ = ["staging_url"]  # the fixture, imported for this module's test


async def _create_pool_and_limit(api_url: str) -> None:
    """The pool, and ``prefect gcl create appzen-api --limit 30 --slot-decay-per-second 30``."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=DEFAULT_LIMIT, limit=QUOTA, slot_decay_per_second=QUOTA
                )
            )


async def _overlapping(api_url: str) -> tuple[list[dict[str, object]], str]:
    """A spread backfill of 2024 (this process) and, once it runs, a nightly of everything (a
    worker): their final states."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        parent = asyncio.ensure_future(
            backfill(
                mapping=MAPPING,
                start=date(2024, 1, 1),
                end=date(2024, 12, 31),
                partitions=2,
                spread=True,
            )
        )
        await asyncio.sleep(0)  # the backfill asks for its partitions first
        nightly = await arun_deployment(
            "nightly-sync/nightly", parameters={"mapping": MAPPING}, timeout=240, poll_interval=1
        )
        rows = await asyncio.wait_for(parent, timeout=240)
        await _drain()
    state = nightly.state.name if nightly.state is not None else "no state"
    return rows, str(state)


async def test_a_nightly_overlapping_a_spread_backfill_shares_one_quota(
    sandbox: SandboxServer, staging_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox.state.configure(rate=QUOTA)
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    generate(erp_url, invoices=INVOICES, seed=22)
    settings = {
        **_settings_env(sandbox, erp_url, staging_url, tmp_path),
        "APPZEN_RATE_LIMIT": str(QUOTA),  # each flow configured at the whole quota
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)  # the parent flow reads them too
    deploy = ["--no-prompt", "deploy", "--name", "backfill-partition", "--name", "nightly"]

    with prefect_database() as database, prefect_server(tmp_path, database, REPO) as api_url:
        await _create_pool_and_limit(api_url)
        deploy_env = client_env(api_url, tmp_path / "deploy-home", {})
        with _workers(api_url, settings, tmp_path):  # stopped before the server
            await asyncio.to_thread(run_cli, deploy, deploy_env, REPO, 240)
            rows, nightly = await _overlapping(api_url)

    assert [row["state"] for row in rows] == ["Completed", "Completed"]
    assert nightly == "Completed"
    store = StagingStore.open(staging_url)
    try:
        runs = store.list_runs(50)
    finally:
        store.close()
    partitions = [run for run in runs if run.parent_run_id is not None]
    [night] = [run for run in runs if run.flow == "sync"]
    assert len(partitions) == 2
    assert all(night.started_at < run.finished_at for run in partitions if run.finished_at)
    assert night.finished_at is not None
    assert all(run.started_at < night.finished_at for run in partitions), "they overlapped"
    assert night.counts.get("created", 0) + night.counts.get("updated", 0) > 0, "both sent"

    responses = sandbox.state.response_counts()
    assert responses.get(429, 0) < 0.01 * sum(responses.values()), responses
    assert_bursts_bounded(sandbox.state.accepted_times(), QUOTA, burst=QUOTA)
