"""Polling AppZen for audit outcomes over loopback HTTP: search windows, audit results of the
invoices this staging sent, and a watermark that never skips a window that failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipeline.appzen.client import AppZenClient
from pipeline.appzen.errors import EndpointNotFound, UnexpectedResponse
from pipeline.devkit.sandbox import Credentials, SandboxServer
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.runtime.dispatch import Dispatcher
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from pipeline.writeback.config import PollSpec
from pipeline.writeback.poll import Poller, windows
from tests.connectors.conftest import FAST, sync_merchant
from tests.support.clock import FakeClock

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DUPLICATE = {
    "rule_code": "duplicate_invoice_amount",
    "risk_message": "Same amount as 880105",
    "risk_results": {"risk_level": "HIGH"},
}
LOW = {"rule_code": "po_match", "risk_message": "ok", "risk_results": {"risk_level": "LOW"}}


def test_windows_start_at_the_last_end_minus_the_overlap_in_slices() -> None:
    spec = PollSpec(lookback_hours=48, overlap_minutes=10, slice_hours=24)
    first = windows(spec, None, NOW)
    assert [(w.start, w.end) for w in first] == [
        (NOW - timedelta(hours=48), NOW - timedelta(hours=24)),
        (NOW - timedelta(hours=24), NOW),
    ]
    later = windows(spec, NOW - timedelta(hours=1), NOW)
    assert [(w.start, w.end) for w in later] == [(NOW - timedelta(minutes=70), NOW)]
    body = later[0].request("REJECTED").model_dump(by_alias=True, exclude_unset=True)
    assert body == {
        "from-last-appzen-update-time": "2026-03-01T10:50:00.000Z",
        "to-last-appzen-update-time": "2026-03-01T12:00:00.000Z",
        "appzen-invoice-status": "REJECTED",
    }


def _dispatcher(settings: Settings) -> Dispatcher:
    return Dispatcher.from_settings(settings, FakeClock(), policy=FAST, breaker=False)


def _now() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


async def test_outcomes_of_this_stagings_invoices_are_read(
    sandbox: SandboxServer, merchant: MerchantState, wb_settings: Settings, store: StagingStore
) -> None:
    await sync_merchant(wb_settings, store)
    audits = sandbox.state.audit
    uuid = {key: record.uuid for key, record in sandbox.state.invoices().items()}
    audits.set_outcome(uuid["880100"], "Rejected", [LOW, DUPLICATE])
    audits.set_outcome(uuid["880101"], "Approved", [LOW])
    stranger = sandbox.state.upsert("not-ours", {"invoice_id": "not-ours"}, historical=False)
    audits.set_outcome(stranger.uuid, "Rejected")
    now = _now()
    async with AppZenClient(wb_settings) as client:
        poller = Poller(client, _dispatcher(wb_settings), store.audit, PollSpec(), {"merchant_api"})
        result = await poller.run(None, now)
    found = {o.invoice_id: o for o in result.outcomes["merchant_api"]}
    assert set(found) == {"880100", "880101"}
    rejected = found["880100"]
    assert (rejected.outcome, rejected.reason, rejected.risk_level) == (
        "REJECTED",
        "duplicate_invoice_amount",
        "HIGH",
    )
    assert rejected.message == "Same amount as 880105"
    assert [r["rule_code"] for r in rejected.rules] == ["po_match", "duplicate_invoice_amount"]
    assert (found["880101"].outcome, found["880101"].reason) == ("APPROVED", None)
    assert rejected.appzen_updated_at is not None
    assert result.counts["not_ours"] == 1
    assert result.reached == now
    assert (result.fatal, result.failures) == (None, {})


async def test_one_search_of_any_status_skips_undecided_invoices(
    sandbox: SandboxServer, merchant: MerchantState, wb_settings: Settings, store: StagingStore
) -> None:
    await sync_merchant(wb_settings, store)
    invoices = sandbox.state.invoices()
    sandbox.state.audit.set_outcome(invoices["880102"].uuid, "Approved")
    async with AppZenClient(wb_settings) as client:
        poller = Poller(
            client,
            _dispatcher(wb_settings),
            store.audit,
            PollSpec(statuses=[]),
            {"merchant_api"},
        )
        result = await poller.run(None, _now())
    assert [o.invoice_id for o in result.outcomes["merchant_api"]] == ["880102"]
    assert result.counts["audit_pending"] == len(invoices) - 1
    assert result.counts["failed_audit"] == 0, "no audit-results call for undecided invoices"


async def test_a_failed_search_keeps_the_watermark_where_it_was(
    sandbox: SandboxServer, wb_settings: Settings, store: StagingStore
) -> None:
    sandbox.state.configure(fail_rate=1.0)
    last = datetime.now(UTC) - timedelta(hours=1)
    async with AppZenClient(wb_settings) as client:
        poller = Poller(client, _dispatcher(wb_settings), store.audit, PollSpec(), set())
        result = await poller.run(last, _now())
    assert result.reached == last, "the next poll searches this window again"
    failures = result.failures[None]
    assert {f.rule for f in failures} == {"appzen_search"}
    assert failures[0].source_location.startswith("AppZen search ")  # type: ignore[union-attr]
    assert failures[0].http_status == 500
    assert result.counts["failed_audit"] == 2


async def test_rejected_credentials_stop_the_poll(
    sandbox: SandboxServer, wb_settings: Settings, store: StagingStore
) -> None:
    original = sandbox.state.credentials
    sandbox.state.credentials = Credentials(api_key="another-key")
    try:
        async with AppZenClient(wb_settings) as client:
            poller = Poller(client, _dispatcher(wb_settings), store.audit, PollSpec(), set())
            result = await poller.run(None, _now())
    finally:
        sandbox.state.credentials = original
    assert result.fatal is not None
    assert result.fatal.status == 401
    assert result.reached is None


async def test_search_and_audit_results_need_appzens_auth(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as http:
        search = await http.post("/invoice/search", json={})
        results = await http.get("/invoice/some-uuid/audit-results")
    assert (search.status_code, results.status_code) == (401, 401)
    settings = load_settings(appzen_base_url=sandbox.base_url)
    async with AppZenClient(settings) as client:
        answer = await client._http.post("invoice/search", json={"x": 1})
    assert answer.status_code == 400
    assert "from-last-appzen-update-time: required" in answer.text


async def test_search_answers_appzen_never_documents_are_fatal() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/invoice/search") and b"REJECTED" in request.content:
            return httpx.Response(404, json={"message": "Error code : 17e3338d - Not found"})
        return httpx.Response(200, json={"not": "a list"})

    settings = load_settings(appzen_base_url="http://127.0.0.1:9/dictionary-data-services")
    async with AppZenClient(settings, transport=httpx.MockTransport(answer)) as client:
        window = windows(PollSpec(), None, NOW)[-1]
        with pytest.raises(UnexpectedResponse, match="malformed search answer"):
            await client.search_invoices(window.request("PROCESSED"))
        with pytest.raises(EndpointNotFound, match="APPZEN_BASE_URL"):
            await client.search_invoices(window.request("REJECTED"))
