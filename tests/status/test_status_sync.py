"""Status push-back against the sandbox over HTTP: what is pushed, once, and only on a change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import SecretStr, ValidationError

from pipeline.appzen.models import payload_json
from pipeline.devkit.sample_erp import GenerationReport, touch
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from pipeline.staging import StageItem, StagingStore
from pipeline.staging.records import SendOutcome, StatusCandidate
from pipeline.status.pushes import status_body
from tests.status.status_helpers import (
    MAPPING_NAME,
    UTC_STAMP,
    erp_states,
    recent_utc,
    sent_ids,
    status_sync,
    sync,
    update_erp,
)

Erp = tuple[str, GenerationReport]


async def test_every_acknowledged_invoice_is_pushed_once_with_its_erp_state(
    settings: Settings, sandbox: SandboxServer, erp: Erp, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    states = erp_states(erp[0])
    errors = erp[1].erp_errors & sent
    assert errors, "the sample ERP must hold sent invoices the ERP failed to take"

    summary = await status_sync(settings, store)

    pushes = sandbox.state.pushes()
    assert sorted(push.invoice_id for push in pushes) == sorted(sent)
    stored = sandbox.state.invoices()
    for push in pushes:
        key, state = push.invoice_id, states[push.invoice_id]
        staged = store.get_invoice(MAPPING_NAME, key)
        assert staged is not None
        assert push.uuid == stored[key].uuid == staged.uuid
        stamp = push.body["timestamp"]
        assert UTC_STAMP.match(stamp)
        assert recent_utc(stamp)
        expected: dict[str, object] = {
            "appzen_invoice_state": "ERROR" if key in errors else "CREATED",
            "invoice_id": key,
            "invoice_status": state.status,
            "timestamp": stamp,
        }
        if key in errors:
            expected["error_data"] = state.error
        assert push.body == expected
    assert summary.status == "succeeded"
    assert summary.failures == []
    assert summary.counts["pushed"] == len(sent) - len(errors)
    assert summary.counts["pushed_error"] == len(errors)
    assert summary.run_id is not None
    run = store.get_run(summary.run_id)
    assert run is not None
    assert (run.flow, run.status, run.counts["pushed"]) == (
        "status_sync",
        "succeeded",
        summary.counts["pushed"],
    )


async def test_a_second_status_sync_pushes_nothing(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    await status_sync(settings, store)
    pushes = sandbox.state.pushes()
    answered = sandbox.state.response_counts()

    again = await status_sync(settings, store)

    assert sandbox.state.pushes() == pushes
    assert sandbox.state.response_counts() == answered
    assert +again.counts == {}
    assert again.status == "succeeded"


async def test_a_status_changed_in_the_erp_is_pushed_once(
    settings: Settings, sandbox: SandboxServer, erp: Erp, store: StagingStore
) -> None:
    await sync(settings, store)
    await status_sync(settings, store)
    before = len(sandbox.state.pushes())
    touched = touch(erp[0], count=8, seed=3)
    sent = sent_ids(store)
    changed = {t.document_no: t.after for t in touched.touched if t.change == "status"}
    changed = {key: status for key, status in changed.items() if key in sent}
    amounts_only = {t.document_no for t in touched.touched if t.change == "amount"} & sent
    assert changed
    assert amounts_only, "touch must also change amounts (resent, same status: no push)"

    resync = await sync(settings, store)
    summary = await status_sync(settings, store)

    assert resync.counts["updated"] == len(changed) + len(amounts_only)
    new = sandbox.state.pushes()[before:]
    assert {push.invoice_id: push.body["invoice_status"] for push in new} == changed
    assert len(new) == len(changed)
    assert summary.counts["pushed"] + summary.counts["pushed_error"] == len(changed)
    await status_sync(settings, store)
    assert len(sandbox.state.pushes()) == before + len(changed)


async def test_an_error_the_erp_reports_later_is_pushed_as_error_then_cleared(
    settings: Settings, sandbox: SandboxServer, erp: Erp, store: StagingStore
) -> None:
    await sync(settings, store)
    await status_sync(settings, store)
    key = sorted(sent_ids(store) - erp[1].erp_errors)[0]
    error = {"message": "Vendor is blocked for posting", "status": "F5 351", "exception": "E F5"}
    update_erp(
        erp[0],
        key,
        erp_error_message=error["message"],
        erp_error_status=error["status"],
        erp_error_exception=error["exception"],
    )
    before = len(sandbox.state.pushes())

    resync = await sync(settings, store)
    flagged = await status_sync(settings, store)

    assert resync.counts["unchanged"] == 1, "the payload is the same: only the ERP state moved"
    [push] = sandbox.state.pushes()[before:]
    assert (push.invoice_id, push.body["appzen_invoice_state"]) == (key, "ERROR")
    assert push.body["error_data"] == error
    assert flagged.counts["pushed_error"] == 1

    update_erp(erp[0], key, erp_error_message=None, erp_error_status=None, erp_error_exception=None)
    await sync(settings, store)
    await status_sync(settings, store)
    [cleared] = sandbox.state.pushes()[before + 1 :]
    assert (cleared.invoice_id, cleared.body["appzen_invoice_state"]) == (key, "CREATED")
    assert "error_data" not in cleared.body


async def test_a_dry_run_counts_what_it_would_push_and_sends_nothing(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    answered = sandbox.state.response_counts()
    runs = len(store.list_runs())

    planned = await status_sync(settings, store, dry_run=True)

    assert planned.counts["would_push"] == len(sent)
    assert planned.run_id is None
    assert planned.dry_run
    assert sandbox.state.pushes() == []
    assert sandbox.state.response_counts() == answered
    assert len(store.list_runs()) == runs
    assert len(store.status_candidates(MAPPING_NAME, 1000)) == len(sent)
    real = await status_sync(settings, store)
    assert real.counts["pushed"] + real.counts["pushed_error"] == len(sent)


async def test_refused_credentials_stop_the_run_and_leave_every_push_pending(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)
    wrong = settings.model_copy(update={"appzen_api_key": SecretStr("wrong-api-key-123")})

    summary = await status_sync(wrong, store)

    assert summary.status == "failed"
    assert summary.fatal is not None
    assert "HTTP 401" in summary.fatal
    assert "wrong-api-key-123" not in summary.fatal
    assert sandbox.state.pushes() == []
    assert len(store.status_candidates(MAPPING_NAME, 1000)) == len(sent)
    assert summary.run_id is not None
    run = store.get_run(summary.run_id)
    assert run is not None
    assert run.status == "failed"


async def test_a_body_that_cannot_be_built_is_a_failed_row_not_a_crash(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    run_id = store.start_run("sync", MAPPING_NAME, {}, historical=False)
    bad = StageItem("BAD-1", "h1", "POSTED", {"message": 5})  # not text: no valid error_data
    store.claim_batch(MAPPING_NAME, [bad], owner="t", lease_seconds=60, run_id=run_id)
    ack = SendOutcome("BAD-1", "h1", b"{}", "acked", "create", uuid="u-1", appzen_status="CREATED")
    store.record_outcomes(run_id, MAPPING_NAME, [ack])

    summary = await status_sync(settings, store)

    [failure] = summary.failures
    assert (failure.source_key, failure.stage, failure.rule) == (
        "BAD-1",
        "status_sync",
        "status_sync_body",
    )
    assert "error_data.message" in failure.message
    assert summary.counts["failed_status_sync"] == 1
    assert sandbox.state.response_counts() == {}


def candidate(
    status: str | None = "POSTED", error: dict[str, object] | None = None
) -> StatusCandidate:
    return StatusCandidate("INV-1", "uuid-1", status, error, None, None)


def test_status_body_stamps_utc_with_z_whatever_the_zone() -> None:
    paris = datetime(2024, 3, 1, 13, 30, 5, 999, tzinfo=timezone(timedelta(hours=1)))
    body = status_body(candidate(), paris)
    assert body is not None
    assert body.timestamp == "2024-03-01T12:30:05Z"
    assert (body.appzen_invoice_state, body.invoice_status) == ("CREATED", "POSTED")


def test_status_body_is_none_without_a_status_or_an_error_message() -> None:
    now = datetime(2024, 1, 1, tzinfo=timezone.utc)  # noqa: UP017 - the same as UTC, spelled out
    assert status_body(candidate(None), now) is None
    assert status_body(candidate(""), now) is None
    assert status_body(candidate(None, {"status": "F5", "message": ""}), now) is None
    error = status_body(candidate(None, {"message": "blocked", "status": "F5"}), now)
    assert error is not None
    assert error.appzen_invoice_state == "ERROR"
    assert error.error_data is not None
    assert error.error_data.message == "blocked"
    assert "invoice_status" not in payload_json(error).decode(), "no null status in the body"
    with pytest.raises(ValidationError):
        status_body(candidate("POSTED", {"message": 5}), now)
