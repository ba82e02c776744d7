"""Status push-back when AppZen pushes back: quota (429), server errors (500), an unknown uuid
(404 → re-created by the next sync) and a refused status (400), against the sandbox over HTTP."""

from __future__ import annotations

import httpx
import pytest

from pipeline.devkit.sandbox import SandboxServer, UnknownInvoiceError
from pipeline.devkit.sandbox.wire import dumps_exact
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.dispatch import Dispatcher
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.sandbox.helpers import AUTH, make_invoice
from tests.status.status_helpers import (
    MAPPING_NAME,
    erp_states,
    quick_retries,
    sent_ids,
    status_sync,
    sync,
)


@pytest.fixture
def patient(settings: Settings) -> Settings:
    """The test settings with room for retries (quota pauses, injected 500s)."""
    return settings.model_copy(update={"appzen_retry_attempts": 10})


def pushed_ids(sandbox: SandboxServer) -> list[str]:
    return sorted(push.invoice_id for push in sandbox.state.pushes())


async def test_pushes_over_the_quota_get_429s_and_still_all_arrive_once(
    settings: Settings, patient: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    sandbox.state.configure(rate=10)  # well under the client's 500/s, even on a busy machine
    throttled = sandbox.state.response_counts().get(429, 0)
    shared = Dispatcher.from_settings(patient, SYSTEM_CLOCK)

    summary = await status_sync(patient, store, dispatcher=shared)

    assert sandbox.state.response_counts().get(429, 0) > throttled
    assert shared.limiter.current_rate < patient.appzen_rate_limit, "the 429s slowed it down"
    assert pushed_ids(sandbox) == sorted(sent)
    assert summary.failures == []
    assert summary.counts["retries"] > 0
    assert summary.counts["requests"] == len(sent) + summary.counts["retries"]


async def test_pushes_answered_500_are_retried_until_they_arrive(
    settings: Settings, patient: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    sandbox.state.configure(fail_rate=0.2, seed=4)

    summary = await status_sync(patient, store, dispatcher=quick_retries(patient))

    assert sandbox.state.response_counts().get(500, 0) > 0
    assert pushed_ids(sandbox) == sorted(sent)
    assert summary.failures == []
    assert summary.counts["retries"] == sandbox.state.response_counts()[500]


async def test_exhausted_retries_are_failed_rows_pushed_by_the_next_status_sync(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    broken = sorted(sent)[len(sent) // 2]  # AppZen fails on this one while it takes the others
    sandbox.state.configure(failing_invoices=[broken])

    failed = await status_sync(settings, store, dispatcher=quick_retries(settings, attempts=2))

    assert not failed.outage, "one status failing while AppZen answers the others is no outage"
    assert failed.counts["failed_status_sync"] == 1
    [failure] = failed.failures
    assert failure.source_key == broken
    assert (failure.stage, failure.rule, failure.http_status) == (
        "retries_exhausted",
        "status_sync_500",
        500,
    )
    assert failure.attempts == 2
    assert "gave up after 2 attempt(s)" in failure.message
    assert broken not in pushed_ids(sandbox)
    sandbox.state.configure(failing_invoices=[])
    again = await status_sync(settings, store)
    assert again.counts["pushed"] + again.counts["pushed_error"] == 1
    assert pushed_ids(sandbox) == sorted(sent)


async def test_an_invoice_appzen_forgot_is_reported_marked_and_recreated_by_the_next_sync(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    victim = sorted(sent)[1]
    old_uuid = sandbox.state.forget(victim).uuid

    summary = await status_sync(settings, store)

    [failure] = summary.failures
    assert (failure.source_key, failure.stage, failure.rule, failure.http_status) == (
        victim,
        "status_sync",
        "appzen_404_unknown_uuid",
        404,
    )
    assert failure.correlation_id
    assert old_uuid in (failure.source_location or "")
    assert summary.counts["recreate"] == 1
    assert summary.counts["pushed"] + summary.counts["pushed_error"] == len(sent) - 1
    assert pushed_ids(sandbox) == sorted(sent - {victim})
    staged = store.get_invoice(MAPPING_NAME, victim)
    assert staged is not None
    assert staged.state == "recreate"
    assert summary.run_id is not None
    recorded = store.failures_for_run(summary.run_id)
    assert [(f.failure.source_key, f.failure.rule) for f in recorded] == [
        (victim, "appzen_404_unknown_uuid")
    ]
    before = len(sandbox.state.pushes())

    resync = await sync(settings, store)

    assert (resync.counts["recreate_resent"], resync.counts["created"]) == (1, 1)
    stored = sandbox.state.invoice(victim)
    assert stored is not None
    assert stored.versions == 1
    assert stored.uuid != old_uuid
    staged = store.get_invoice(MAPPING_NAME, victim)
    assert staged is not None
    assert (staged.state, staged.uuid) == ("sent", stored.uuid)

    pushed = await status_sync(settings, store)

    [push] = sandbox.state.pushes()[before:]
    assert (push.invoice_id, push.uuid) == (victim, stored.uuid)
    assert push.body["invoice_status"] == erp_states(settings_erp_url(settings))[victim].status
    assert pushed.failures == []


async def test_a_status_appzen_refuses_is_a_failed_row_with_its_message(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    states = erp_states(settings_erp_url(settings))
    refused = {key for key in sent if states[key].status == "PAID"}
    assert refused
    sandbox.state.configure(refused_statuses=["PAID"])

    summary = await status_sync(settings, store)

    assert {f.source_key for f in summary.failures} == refused
    for failure in summary.failures:
        assert (failure.stage, failure.rule, failure.http_status) == (
            "status_sync",
            "status_sync_400",
            400,
        )
        assert "invoice_status: 'PAID' is not a status AppZen accepts" in failure.message
        assert failure.error_code
        assert failure.correlation_id
        assert failure.attempts == 1
    assert summary.counts["failed_status_sync"] == summary.failed == len(refused)
    assert pushed_ids(sandbox) == sorted(sent - refused)
    pending = {c.invoice_id for c in store.status_candidates(MAPPING_NAME, 1000)}
    assert pending == refused, "a refused push stays pending for the next status-sync"
    assert summary.run_id is not None
    assert {f.failure.source_key for f in store.failures_for_run(summary.run_id)} == refused


def test_the_sandbox_forgets_an_invoice_by_id_or_uuid(sandbox: SandboxServer) -> None:
    headers = {**AUTH, "historical": "false", "content-type": "application/json"}
    with (
        httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10) as appzen,
        httpx.Client(base_url=sandbox.admin_url, timeout=10) as admin,
    ):
        first = appzen.post("/invoice", content=dumps_exact(make_invoice("A/1"))).json()["uuid"]
        second = appzen.post("/invoice", content=dumps_exact(make_invoice("B-2"))).json()["uuid"]

        by_id = admin.post("/invoices/A/1/forget")
        by_uuid = admin.post(f"/invoices/{second}/forget")
        unknown = admin.post("/invoices/nobody/forget")

        assert (by_id.status_code, by_id.json()["uuid"]) == (200, first)
        assert (by_uuid.status_code, by_uuid.json()["invoice_id"]) == (200, "B-2")
        assert unknown.status_code == 404
        assert "no invoice with invoice_id or uuid 'nobody'" in unknown.json()["message"]
        assert appzen.get(f"/invoice/{first}").status_code == 404
        again = appzen.post("/invoice", content=dumps_exact(make_invoice("A/1")))
        assert again.status_code == 201
        assert again.json()["uuid"] != first
    assert sandbox.state.invoices().keys() == {"A/1"}
    with pytest.raises(UnknownInvoiceError):
        sandbox.state.forget(second)


def settings_erp_url(settings: Settings) -> str:
    assert settings.erp_database_url is not None
    return settings.erp_database_url.get_secret_value()
