"""The sandbox's ERP-side systems over plain HTTP: their admin routes, AppZen's audit admin call
and search window, and that they stay out of AppZen's gate and response counts."""

from __future__ import annotations

import httpx

from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.settings import SANDBOX_CREDENTIALS

APPZEN_HEADERS = dict(
    zip(("x-api-key", "customer-id", "customer-key"), SANDBOX_CREDENTIALS, strict=True)
)


def test_merchant_admin_seeds_configures_and_shows(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.admin_url) as admin:
        seeded = admin.post("/merchant/invoices", json={"invoices": [{"id": 7, "storeId": 1}]})
        bad = admin.post("/merchant/invoices", json={"invoices": [{"storeId": 1}]})
        configured = admin.post("/merchant/configure", json={"fail_next": [899]})
        state = admin.get("/merchant/state").json()
    assert (seeded.status_code, bad.status_code, configured.status_code) == (200, 400, 200)
    assert state["invoices"] == [{"id": 7, "storeId": 1}]
    with httpx.Client(base_url=sandbox.merchant_url) as api:
        answer = api.get("/invoice", headers={"authorization": "Bearer x"})
    assert answer.status_code == 500
    assert answer.json()["api"]["message"]["error"]["899"]["title"] == "Unknown Error"


def test_merchant_and_crm_stay_out_of_appzens_gate(
    sandbox: SandboxServer, merchant: MerchantState
) -> None:
    sandbox.state.configure(fail_rate=1.0)
    with httpx.Client() as http:
        merchant_answer = http.get(sandbox.merchant_url + "/invoice")
        crm_answer = http.post(sandbox.crm_url + "/authentication/token", json={})
    assert merchant_answer.json()["api"]["message"]["error"]["911"]["code"] == (
        "authorizationHeaderInvalid"
    )
    assert crm_answer.json()["status"]["code"] == "AUTHENTICATION_FAILED"
    assert sandbox.state.response_counts() == {}, "not AppZen answers"


def test_crm_admin_adds_invoices_and_moves_its_clock(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.admin_url) as admin:
        added = admin.post(
            "/crm/invoices", json={"invoices": [{"reference_number": "9", "state": "POSTED"}]}
        )
        wrong = admin.post("/crm/invoices", json={"invoices": [{"state": "DRAFT"}]})
        assert admin.post("/crm/configure", json={"advance_s": 10}).status_code == 200
        state = admin.get("/crm/state").json()
    assert (added.status_code, wrong.status_code) == (200, 400)
    assert [i["life_cycle_state"] for i in state["invoices"]] == ["POSTED"]
    login = {"username": "sandbox-crm-user", "password": "sandbox-crm-password"}
    with httpx.Client(base_url=sandbox.crm_url) as api:
        token = api.post("/authentication/token", json={**login, "organisation": "SANDBOX"})
        shown = api.get(
            "/invoices/show",
            params={
                "token": token.json()["data"]["token"],
                "invoice_identifier": "reference_number=9",
            },
        )
        ambiguous = api.post(
            "/invoices/reject",
            json={
                "token": token.json()["data"]["token"],
                "invoice_identifier": {"reference_number": "9", "number": "I1"},
            },
        )
    assert shown.json()["data"]["life_cycle_state"] == "POSTED"
    assert ambiguous.json()["status"]["code"] == "INVALID_PARAMETERS"


def test_the_audit_admin_call_decides_and_search_reports_it(sandbox: SandboxServer) -> None:
    record = sandbox.state.upsert("INV-1", {"invoice_id": "INV-1"}, historical=False)
    sandbox.state.upsert("INV-2", {"invoice_id": "INV-2"}, historical=False)
    with httpx.Client(base_url=sandbox.admin_url) as admin:
        decided = admin.post("/audit/INV-1", json={"status": "Rejected", "rules": []})
        wrong = admin.post("/audit/INV-1", json={"status": "Maybe"})
        missing = admin.post("/audit/nope", json={"status": "Approved"})
    assert (decided.status_code, wrong.status_code, missing.status_code) == (200, 400, 404)
    assert decided.json()["audit_results"]["risk_level"] == "HIGH"
    window = {
        "from-last-appzen-update-time": "2000-01-01T00:00:00Z",
        "to-last-appzen-update-time": "2100-01-01T00:00:00Z",
    }
    with httpx.Client(base_url=sandbox.base_url, headers=APPZEN_HEADERS) as api:
        every = api.post("/invoice/search", json=window).json()
        rejected = api.post(
            "/invoice/search", json={**window, "appzen-invoice-status": "REJECTED"}
        ).json()
        empty = api.post(
            "/invoice/search", json={**window, "to-last-appzen-update-time": "2001-01-01T00:00:00Z"}
        ).json()
        results = api.get(f"/invoice/{record.uuid}/audit-results").json()
    assert {h["erp-invoice-id"]: h["appzen-invoice-status"] for h in every} == {
        "INV-1": "REJECTED",
        "INV-2": "IN_PROGRESS",
    }
    assert [h["appzen-uuid"] for h in rejected] == [record.uuid]
    assert empty == []
    assert results == {"audit_results": {"rules": [], "risk_level": "HIGH", "status": "Rejected"}}
