"""No secret reaches Prefect: flow-run logs (read back from the server), state messages and
artifacts stay clean with real secrets in the environment or in a Secret block, on success and on
failure, and even when an exception message carries one."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from typing import Any

import pytest
from prefect import flow, get_run_logger
from prefect.blocks.system import Secret
from prefect.client.schemas.objects import State

from flows import credentials
from flows.common import flow_settings
from flows.nightly import nightly_sync
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.knobs import Credentials
from pipeline.settings import Settings
from tests.databases import pg_schema
from tests.flows.helpers import MAPPING, artifact_data, flow_run_id, logs_of

pytestmark = pytest.mark.prefect

API_KEY = "sk-live-9f8e7d6c5b4a3210"
CUSTOMER_KEY = "ck-prod-77aa88bb99cc"
DB_PASSWORD = "pw-Zq7xW3vR8tY2"
SECRETS = (API_KEY, CUSTOMER_KEY, DB_PASSWORD)


@pytest.fixture
def secret_sandbox(sandbox: SandboxServer) -> Iterator[SandboxServer]:
    """The sandbox accepting only the secret credentials; its own ones again afterwards."""
    original = sandbox.state.credentials
    sandbox.state.credentials = Credentials(API_KEY, "cust-4711", CUSTOMER_KEY)
    yield sandbox
    sandbox.state.credentials = original


@pytest.fixture
def staging_with_password() -> Iterator[str]:
    """A PostgreSQL staging URL carrying a password (trust auth ignores it)."""
    with pg_schema("flows_secrets") as url:
        yield url.replace("postgres@", f"postgres:{DB_PASSWORD}@")


@flow(name="leaky")
async def leaky(credentials_block: str | None = None) -> None:
    """A flow with a bug: it logs the API key and raises an error that carries it."""
    key = (await flow_settings(credentials_block)).credentials()[0]
    get_run_logger().info("calling AppZen with x-api-key %s", key)
    raise RuntimeError(f"AppZen refused x-api-key {key}")


async def _assert_clean(state: State[Any]) -> None:
    logs = await logs_of(flow_run_id(state))
    text = "\n".join(log.message for log in logs)
    assert "Finished in state" in text  # the whole log was read back
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.postgres
async def test_secrets_from_the_environment_never_reach_prefect(
    flow_env: Settings,
    secret_sandbox: SandboxServer,
    staging_with_password: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPZEN_API_KEY", API_KEY)
    monkeypatch.setenv("APPZEN_CUSTOMER_ID", "cust-4711")
    monkeypatch.setenv("APPZEN_CUSTOMER_KEY", CUSTOMER_KEY)
    monkeypatch.setenv("STAGING_DATABASE_URL", staging_with_password)

    ok = await nightly_sync(mapping=MAPPING, return_state=True)
    assert ok.is_completed()
    assert secret_sandbox.state.invoices()
    markdown = await artifact_data("nightly-sample-erp-summary")
    monkeypatch.setenv("ERP_DATABASE_URL", staging_with_password.replace("/test?", "/nodb?"))
    failed = await nightly_sync(mapping=MAPPING, return_state=True)
    leaked = await leaky(return_state=True)

    assert failed.is_failed()
    assert "***@" in (failed.message or "")
    assert leaked.is_failed()
    for state in (ok, failed, leaked):
        await _assert_clean(state)
    for secret in SECRETS:
        assert secret not in markdown
        assert secret not in (failed.message or "")


async def test_credentials_from_a_secret_block(
    flow_env: Settings, secret_sandbox: SandboxServer
) -> None:
    await Secret(
        value={"api_key": API_KEY, "customer_id": "cust-4711", "customer_key": CUSTOMER_KEY}
    ).save("appzen-test-credentials", overwrite=True)

    ok = await nightly_sync(
        mapping=MAPPING, credentials_block="appzen-test-credentials", return_state=True
    )
    leaked = await leaky(credentials_block="appzen-test-credentials", return_state=True)

    assert ok.is_completed()
    assert len(secret_sandbox.state.invoices()) > 0  # only the block's keys are accepted
    assert secret_sandbox.state.response_counts().get(401, 0) == 0
    for state in (ok, leaked):
        await _assert_clean(state)


async def test_a_secret_block_without_the_three_keys_is_refused(flow_env: Settings) -> None:
    await Secret(value={"api_key": API_KEY}).save("appzen-test-partial", overwrite=True)

    state = await nightly_sync(
        mapping=MAPPING, credentials_block="appzen-test-partial", return_state=True
    )

    assert state.is_failed()
    message = state.message or ""
    assert "api_key, customer_id, customer_key" in message
    assert "python -m flows.credentials appzen-test-partial" in message
    assert API_KEY not in message


async def test_a_worker_without_credentials_for_a_test_appzen_stops_before_any_request(
    flow_env: Settings, secret_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loopback AppZen is not the sandbox unless APPZEN_SANDBOX says so: the flow fails on the
    settings, naming them, and AppZen sees no request (no 401)."""
    monkeypatch.setenv("APPZEN_SANDBOX", "false")

    state = await nightly_sync(mapping=MAPPING, return_state=True)

    assert state.is_failed()
    message = state.message or ""
    assert "APPZEN_API_KEY, APPZEN_CUSTOMER_ID, APPZEN_CUSTOMER_KEY must be set" in message
    assert "APPZEN_SANDBOX=true" in message
    assert secret_sandbox.state.response_counts() == {}


def test_the_credentials_command_saves_a_block_and_prints_no_secret(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APPZEN_API_KEY", API_KEY)
    monkeypatch.setenv("APPZEN_CUSTOMER_ID", "cust-4711")
    monkeypatch.delenv("APPZEN_CUSTOMER_KEY", raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: CUSTOMER_KEY)  # typed, hidden

    assert credentials.main(["appzen-cli-credentials"]) == 0

    out = capsys.readouterr()
    assert "saved Prefect Secret block 'appzen-cli-credentials'" in out.out
    assert API_KEY not in out.out + out.err
    assert CUSTOMER_KEY not in out.out + out.err
    block: Any = Secret.load("appzen-cli-credentials")  # sync test: the block itself
    saved = block.get()
    assert saved == {"api_key": API_KEY, "customer_id": "cust-4711", "customer_key": CUSTOMER_KEY}


def test_the_credentials_command_refuses_an_empty_value(
    prefect_server: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("APPZEN_API_KEY", "APPZEN_CUSTOMER_ID", "APPZEN_CUSTOMER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "  ")

    with pytest.raises(SystemExit, match="APPZEN_API_KEY is empty"):
        credentials.main(["appzen-cli-empty"])
    assert credentials.main([]) == 2  # usage
