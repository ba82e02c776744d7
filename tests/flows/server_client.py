"""What the real-server tests ask a Prefect server and staging, as ops would: create the work
pool prefect.yaml names, read a flow run's state (and wait for a final one), and list the runs
with ``appzen-etl runs --json``."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.cli.support import APPZEN_ETL, clean_environment

POOL = "appzen-etl"
"""The work pool prefect.yaml's deployments name."""
FINAL = frozenset({"Completed", "Cancelled", "Failed", "Crashed"})


async def create_process_pool(api_url: str, name: str = POOL) -> None:
    """Create the process work pool ``name`` on the server at ``api_url``."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


async def flow_run_state(api_url: str, run_id: UUID) -> tuple[str, str]:
    """The flow run's state now: ``(name, message)``."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            state = (await client.read_flow_run(run_id)).state
    assert state is not None
    return state.name or "", state.message or ""


async def final_state(api_url: str, run_id: UUID, seconds: float) -> tuple[str, str]:
    """Poll the flow run until its state is final (deadline ``seconds``): ``(name, message)``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        name, message = await flow_run_state(api_url, run_id)
        if name in FINAL:
            return name, message
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"flow run {run_id} still {name} after {seconds:.0f} s")
        await asyncio.sleep(0.5)  # poll interval


def runs_json(settings: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """``appzen-etl runs --json`` as an operator runs it, with ``settings`` as its environment."""
    done = subprocess.run(
        [str(APPZEN_ETL), "runs", "--json"],
        env=clean_environment(settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done
    runs: list[dict[str, Any]] = json.loads(done.stdout)["runs"]
    return runs
