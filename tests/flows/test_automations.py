"""The automations shipped as code (flows/automations.py) on a real Prefect server: installed by
``python -m flows.automations`` (twice: one set, duplicates removed), a nightly whose worker
machine is lost (worker and flow-run process killed with SIGKILL) is marked Crashed once its
heartbeats stop, the next nightly, started at once on the same staging at the default lease,
delivers everything and counts each resend of what AppZen took from the dead run exactly (and
``appzen-etl runs`` shows the dead run ``crashed``), and the nightly alert reaches a webhook
for a crash, a failure and a night that completed with failed invoices.

Real processes: a Prefect server with its triggers service (PostgreSQL database), the ``nightly``
deployment made by ``prefect deploy`` from this checkout, one ``prefect worker``; a custom-webhook
notification block pointed at an HTTP receiver in this process.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from uuid import UUID

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.automations import CRASH_DETECTION, NIGHTLY_ALERT, crash_detection
from flows.nightly import nightly_sync
from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.staging import StagingStore
from tests.flows.helpers import MAPPING, REPO, counts_of
from tests.flows.prefect_processes import (
    PREFECT,
    client_env,
    kill_machine,
    prefect_database,
    prefect_server,
    run_cli,
    start,
    stop,
    wait_until,
)
from tests.flows.server_client import POOL, flow_run_state, runs_json
from tests.reliability.world import settle

pytestmark = [pytest.mark.prefect, pytest.mark.postgres, pytest.mark.timeout(600)]

BLOCK = "custom-webhook/appzen-etl-test"
HEARTBEAT = 30  # s, Prefect's minimum
TIMEOUT = 60  # s without a heartbeat: Crashed


class Receiver:
    """An HTTP endpoint on loopback that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, str]] = []
        received = self.messages

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def about(self, needle: str) -> list[dict[str, str]]:
        """The messages whose subject or body contains ``needle``."""
        return [m for m in self.messages if needle in m["subject"] + m["body"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def _install(api_url: str, home: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m flows.automations`` as an operator runs it, from the checkout."""
    return subprocess.run(
        [sys.executable, "-m", "flows.automations"],
        env=client_env(api_url, home, settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _automations(api_url: str) -> dict[str, list[float]]:
    """Automation name → the trigger window (s) of each automation of that name."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            found = await client.read_automations()
    names: dict[str, list[float]] = {}
    for automation in found:
        window = getattr(automation.trigger, "within", None)
        names.setdefault(automation.name, []).append(window.total_seconds() if window else 0.0)
    return names


async def _pause_alert(api_url: str, *, pause: bool) -> bool:
    """Pause (or resume) the nightly alert; whether it was enabled before."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            (alert,) = await client.read_automations_by_name(NIGHTLY_ALERT)
            assert alert.id is not None
            if pause:
                await client.pause_automation(alert.id)
            else:
                await client.resume_automation(alert.id)
    return alert.enabled


async def _prepare(api_url: str, receiver: Receiver) -> None:
    """The pool and the webhook block."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        block = CustomWebhookNotificationBlock(
            name="appzen-etl ops",
            url=receiver.url,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
        )
        await block.save(BLOCK.split("/")[1])
        async with get_client() as client:
            await client.create_work_pool(WorkPoolCreate(name=POOL, type="process"))


async def _add_stray_copy(api_url: str) -> None:
    """A second crash automation of the same name, as a hand-made copy would leave."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            await client.create_automation(crash_detection(timedelta(seconds=600)))


async def _start_nightly(api_url: str) -> UUID:
    """A run of the deployed nightly with heartbeats every :data:`HEARTBEAT` seconds."""
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            deployment = await client.read_deployment_by_name("nightly-sync/nightly")
            run = await client.create_flow_run_from_deployment(
                deployment.id,
                job_variables={"env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT)}},
            )
    return run.id


def _recorded(staging_url: str) -> set[str]:
    """The invoices staging records as sent (acknowledged by AppZen)."""
    store = StagingStore.open(staging_url)
    try:
        return {r.invoice_id for r in store.invoices_in_state("sample_erp", "sent", 100_000)}
    finally:
        store.close()


@contextmanager
def _environment(monkeypatch: pytest.MonkeyPatch, **settings: str) -> Iterator[None]:
    with monkeypatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        yield


async def test_automations_install_once_crash_lost_runs_and_alert(
    sandbox: SandboxServer, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    erp_url = f"sqlite:///{tmp_path / 'erp.db'}"
    report = generate(erp_url, invoices=120, seed=8)
    assert report.dirty, "the sample ERP has rows that fail: the alert's third case"
    flow_settings = {
        "APPZEN_BASE_URL": sandbox.base_url,
        "ERP_DATABASE_URL": erp_url,
        "REPORTS_DIR": str(tmp_path / "reports"),
    }
    worker_settings = {
        **flow_settings,
        "STAGING_DATABASE_URL": f"sqlite:///{tmp_path / 'worker-staging.db'}",
        "APPZEN_RATE_LIMIT": "1",  # the nightly runs for minutes: it is killed midway
        "PREFECT_WORKER_QUERY_SECONDS": "1",
    }
    with (
        prefect_database() as database,
        prefect_server(tmp_path, database, REPO, services=["TRIGGERS"]) as api_url,
    ):
        await _prepare(api_url, receiver)
        home = tmp_path / "ops-home"
        settings = {"NOTIFICATION_BLOCK": BLOCK, "HEARTBEAT_TIMEOUT": str(TIMEOUT)}
        first = _install(api_url, home, **settings)
        assert first.returncode == 0, first.stderr
        assert f"{CRASH_DETECTION}: created" in first.stdout
        await _add_stray_copy(api_url)
        await _pause_alert(api_url, pause=True)  # an operator's maintenance window
        second = _install(api_url, home, **settings)
        assert second.returncode == 0, second.stderr
        assert f"{NIGHTLY_ALERT}: updated" in second.stdout
        assert f"{CRASH_DETECTION}: updated (1 duplicate(s) removed)" in second.stdout
        assert await _automations(api_url) == {CRASH_DETECTION: [TIMEOUT], NIGHTLY_ALERT: [0.0]}
        assert not await _pause_alert(api_url, pause=False), "a paused alert stays paused"
        missing = _install(api_url, home, NOTIFICATION_BLOCK="custom-webhook/nobody")
        assert missing.returncode == 2
        assert "no block 'nobody' of type 'custom-webhook'" in missing.stderr

        deploy_env = client_env(api_url, tmp_path / "deploy-home", {})
        run_cli(["--no-prompt", "deploy", "--name", "nightly"], deploy_env, REPO, 240)
        worker_env = client_env(api_url, tmp_path / "worker-home", worker_settings)
        args = [PREFECT, "worker", "start", "--pool", POOL, "--name", "doomed"]
        worker = start("worker", args, worker_env, tmp_path, REPO)
        try:
            run_id = await _start_nightly(api_url)
            # Running, heartbeat sent (the first goes out as the flow starts), invoices going out
            await asyncio.to_thread(
                wait_until, lambda: len(sandbox.state.invoices()) >= 3, 240, "the nightly sending"
            )
            assert (await flow_run_state(api_url, run_id))[0] == "Running"
            killed = kill_machine(worker)
            assert killed, "the flow-run process was the worker's child"
        except BaseException:
            print(worker.tail())
            raise
        finally:
            stop(worker)
        settle(sandbox)  # the request the killed process had out, answered into the void
        staging = worker_settings["STAGING_DATABASE_URL"]
        unrecorded = set(sandbox.state.invoices()) - _recorded(staging)
        # The next nightly, at once (no lease to wait out: the dead run's process is gone), on
        # the same staging, as the next night's run on this machine would.
        in_process = {**flow_settings, "STAGING_DATABASE_URL": staging, "APPZEN_RATE_LIMIT": "500"}
        with (
            temporary_settings(updates={PREFECT_API_URL: api_url}),
            _environment(monkeypatch, **in_process),
        ):
            completed = await nightly_sync(mapping=MAPPING)  # raises unless Completed
        next_sync = counts_of(completed["sync"])
        assert next_sync.get("busy", 0) == 0, next_sync
        assert next_sync.get("resent_after_crash", 0) == len(unrecorded), (next_sync, unrecorded)
        stored = sandbox.state.invoices()
        assert len(stored) == report.invoices - len(report.dirty), "everything delivered"
        twice = {key for key, invoice in stored.items() if invoice.versions > 1}
        assert twice == unrecorded, "each resend after the crash counted, and only those"
        assert {invoice.versions for invoice in stored.values()} <= {1, 2}
        listed = runs_json({**in_process, "APPZEN_SANDBOX": "true"}, tmp_path)
        assert [(r["flow"], r["status"]) for r in listed if r["flow"] == "sync"] == [
            ("sync", "succeeded"),
            ("sync", "crashed"),
        ], listed
        sent_at_kill = len(stored)

        deadline = TIMEOUT + HEARTBEAT + 60  # the last beat may be up to HEARTBEAT old
        for _ in range(int(deadline / 2)):
            name, message = await flow_run_state(api_url, run_id)
            if name != "Running":
                break
            await asyncio.sleep(2)  # poll interval
        assert name == "Crashed", (name, message)
        assert f"no heartbeat for {TIMEOUT} s" in message
        assert len(sandbox.state.invoices()) == sent_at_kill  # nothing ran on after the kill

        gone = f"sqlite:///{tmp_path / 'no-such-dir' / 'erp.db'}"
        with (
            temporary_settings(updates={PREFECT_API_URL: api_url}),
            _environment(monkeypatch, **{**in_process, "ERP_DATABASE_URL": gone}),
        ):
            failed = await nightly_sync(mapping=MAPPING, return_state=True)
        assert failed.is_failed()

        def alerted() -> bool:
            return bool(
                receiver.about("Crashed")
                and receiver.about("invoices failed")
                and receiver.about("Failed")
            )

        await asyncio.to_thread(wait_until, alerted, 180, f"three alerts in {receiver.messages}")
    crashed = receiver.about("Crashed")[0]
    assert "nightly-sync" in crashed["subject"]
    assert f"no heartbeat for {TIMEOUT} s" in crashed["body"]
    failures = receiver.about("invoices failed")[0]
    assert "appzen-etl report --run" in failures["body"]
