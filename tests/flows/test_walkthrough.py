"""docs/prefect-server.md runs as written: every command block of the page, in order, in a fresh
copy of the checkout, against a real Prefect server (PostgreSQL), two checkout workers and a
worker that runs the installed release outside the checkout, and the sandbox.

Only what must differ on a shared test machine is replaced (:func:`_replacements`): ports,
database names, the ``/srv`` and ``/opt`` folders, the sample's size (invoices, partitions), and
the worker venv's installer (uv for pip: the same requirements.txt; pip took 80 s when busy).
The page marks how each block runs (tests/flows/walkthrough.py); then this test checks what the
issue asked the walkthrough to show: write-back deployed inactive, bad parameters refused when
the run is created, retry-failed run, progress, WARNING and ERROR lines in the flow-run logs,
the failure table in the artifact, and the release worker running the nightly.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.databases import PG_ADMIN, admin_engine
from tests.flows.helpers import REPO
from tests.flows.prefect_processes import Process, free_port
from tests.flows.walkthrough import (
    Walkthrough,
    blocks,
    fresh_copy,
    listening,
    logged,
    shell_env,
    substitute,
)

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(900)]

DOC = REPO / "docs" / "prefect-server.md"
UV = REPO / ".tools" / "bin" / "uv"


def _replacements(
    ports: dict[str, int], databases: dict[str, str], root: Path
) -> list[tuple[str, str]]:
    """What differs from the page, in order; each ``old`` must be on the page."""
    venv = "/opt/appzen-etl/venv"
    return [
        ("127.0.0.1:4200", f"127.0.0.1:{ports['server']}"),
        ("--port 4200", f"--port {ports['server']}"),
        ("127.0.0.1:8765", f"127.0.0.1:{ports['sandbox']}"),
        ("--port 8765", f"--port {ports['sandbox']}"),
        *databases.items(),
        ("invoices=400", "invoices=40"),
        ("--param partitions=4", "--param partitions=2"),  # two flow-run processes fewer
        (f"python3 -m venv {venv}", f"{UV} venv --seed --quiet --python {sys.executable} {venv}"),
        (
            f"{venv}/bin/pip install -r requirements.txt",
            f"{UV} pip install --quiet --python {venv}/bin/python -r requirements.txt",
        ),
        ("/srv/appzen-etl", str(root / "srv" / "appzen-etl")),
        ("/opt/appzen-etl", str(root / "opt" / "appzen-etl")),
    ]


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """Unique names for the page's two databases (it creates them), dropped afterwards."""
    token = secrets.token_hex(4)
    names = {name: f"{name}_{token}" for name in ("appzen_prefect", "appzen_staging")}
    yield names
    admin = admin_engine(PG_ADMIN)
    with admin.connect() as conn:
        for name in names.values():
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).text == "true"
    except httpx.TransportError:
        return False


@dataclass(frozen=True)
class ServerState:
    """What the walkthrough left on the server."""

    writeback: list[bool]
    writeback_description: str
    nightly: list[bool]
    backfill_runs: int
    retry_states: list[str | None]


async def _server_state(api_url: str) -> ServerState:
    """What the walkthrough left on the server: deployments' schedules, runs per flow."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            writeback = await client.read_deployment_by_name("writeback/writeback")
            nightly = await client.read_deployment_by_name("nightly-sync/nightly")
            runs = {
                name: await client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[name]))
                )
                for name in ("backfill", "retry-failed")
            }
    return ServerState(
        writeback=[s.active for s in writeback.schedules],
        writeback_description=writeback.description or "",
        nightly=[s.active for s in nightly.schedules],
        backfill_runs=len(runs["backfill"]),
        retry_states=[r.state_name for r in runs["retry-failed"]],
    )


def _flat(text: str) -> str:
    """Output with whitespace runs made single spaces (the CLI wraps long lines)."""
    return " ".join(text.split())


async def test_the_prefect_server_walkthrough_runs_as_written(
    tmp_path: Path, databases: dict[str, str]
) -> None:
    text = DOC.read_text()
    ports = {"server": free_port(), "sandbox": free_port()}
    replacements = _replacements(ports, databases, tmp_path)
    for old, _ in replacements:
        assert old in text, f"the page no longer has {old!r}: update the test's replacements"
    steps = [b for b in blocks(text) if b.action != "skip"]
    checkout = fresh_copy(REPO, tmp_path / "appzen-etl")
    (tmp_path / "elsewhere").mkdir()
    api_url = f"http://127.0.0.1:{ports['server']}/api"
    walk = Walkthrough(
        checkout=checkout,
        elsewhere=tmp_path / "elsewhere",
        folder=tmp_path,
        env=shell_env(tmp_path / "operator-prefect"),
        ready={
            "server": lambda _: _healthy(api_url),
            "sandbox": listening(ports["sandbox"]),
            **{w: logged(f"Worker '{w}' started!") for w in ("worker-a", "worker-b", "worker-c")},
        },
    )
    try:
        for block in steps:
            walk.do(replace(block, code=substitute(block.code, replacements)))
        state = await _server_state(api_url)
    finally:
        walk.stop_all()
    out = {label: _flat(output) for label, output in walk.outputs.items()}
    worker_c = walk.terminals["worker-c"]

    # Deployed safely: write-back inactive until configured, the rest on their schedules.
    assert state.writeback == [False]
    assert state.writeback_description.startswith("NOT SCHEDULED UNTIL CONFIGURED")
    assert state.nightly == [True]
    # Bad parameters refused when the run is created: only the walkthrough's backfill exists.
    assert "Validation failed for field 'start'" in out["bad-start"]
    assert "Validation failed for field 'partitions'" in out["bad-partitions"]
    assert state.backfill_runs == 1
    # retry-failed ran (to the end: the sample's bad rows are still bad).
    assert state.retry_states == ["Completed"]
    # The nightly's log: progress, and a WARNING for the sample's failed invoices.
    assert "nightly-sample-erp-summary" in out["inspect"]
    assert "extracted 40 ·" in out["inspect"]
    assert "· done" in out["inspect"]
    assert "| WARNING | Flow run" in out["inspect"]
    assert "invoices failed" in out["inspect"]
    # The nightly's artifact holds the failure table itself.
    assert "2 failed invoices" in out["inspect"]
    assert "| invoice | number | supplier | total | reason |" in out["inspect"]
    # A run that stops: an ERROR with the reason, never the key.
    assert "Flow run finished in state 'Failed'" in out["wrong-key"]
    assert "| ERROR | Flow run" in out["failed-log"]
    assert "stopped: check APPZEN_API_KEY" in out["failed-log"]
    assert "not-the-key" not in out["failed-log"]
    # The worker without a checkout installed the release and ran the nightly in its home.
    _ran_the_release(worker_c, checkout)


def _ran_the_release(worker: Process, checkout: Path) -> None:
    log = worker.log.read_text(errors="replace")
    assert "Worker 'worker-c' submitting flow run" in log
    assert "Executing deployment step: pip_install_requirements" in log
    assert "Finished in state Completed()" in log
    assert str(checkout) not in log
