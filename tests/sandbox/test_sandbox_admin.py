"""The /_sandbox admin routes: state, configure, reset and mutate, over HTTP and in process."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from pipeline.devkit.sandbox import PathError, SandboxServer, UnknownInvoiceError
from tests.sandbox.helpers import body, create, error_of, make_invoice, sync_body


def state_of(admin: httpx.Client) -> dict[str, Any]:
    response = admin.get("/state")
    assert response.status_code == 200
    data: dict[str, Any] = json.loads(response.content, parse_float=Decimal)
    return data


def test_state_lists_invoices_pushes_counts_and_accepted_times(
    appzen: httpx.Client, admin: httpx.Client
) -> None:
    uuid = create(appzen, make_invoice("INV-1"), historical="true").json()["uuid"]
    create(appzen, make_invoice("INV-1"), historical="false")
    appzen.post(f"/invoice/{uuid}/status-sync", content=body(sync_body()))
    appzen.get("/nowhere")

    response = admin.get("/state")
    state = json.loads(response.content, parse_float=Decimal)

    invoice = state["invoices"]["INV-1"]
    assert invoice["uuid"] == uuid
    assert invoice["versions"] == 2
    assert invoice["historical"] == [True, False]
    assert invoice["payload"] == make_invoice("INV-1")
    assert '"amount": 200.00' in response.text
    assert [push["uuid"] for push in state["status_syncs"]] == [uuid]
    assert state["status_syncs"][0]["sync"]["invoice_status"] == "POSTED"
    assert state["responses"] == {"200": 2, "201": 1, "404": 1}
    assert state["dropped"] == 0
    assert len(state["accepted_times"]) == 4
    assert state["accepted_times"] == sorted(state["accepted_times"])
    assert state["knobs"]["rate"] is None


def test_admin_routes_skip_auth_quota_faults_and_counts(
    sandbox: SandboxServer, admin: httpx.Client
) -> None:
    sandbox.state.configure(rate=1, fail_rate=1.0, drop_rate=1.0)

    statuses = [admin.get("/state").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert sandbox.state.response_counts() == {}
    assert sandbox.state.accepted_times() == []


def test_configure_changes_the_given_knobs_only(
    sandbox: SandboxServer, appzen: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/configure", json={"latency_ms": 5})
    response = admin.post("/configure", json={"fail_rate": 1.0, "seed": 3})

    assert response.status_code == 200
    assert response.json()["fail_rate"] == 1.0
    assert response.json()["latency_ms"] == 5
    assert sandbox.state.knobs.seed == 3
    error_of(create(appzen, make_invoice()), 500)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"fail_rate": 2}, "fail_rate: Input should be less than or equal to 1", id="range"
        ),
        pytest.param({"rate": "fast"}, "rate: Input should be a valid number", id="type"),
        pytest.param({"latnecy_ms": 5}, "latnecy_ms: Extra inputs are not permitted", id="typo"),
        pytest.param([1, 2], "send a JSON object of knobs", id="not-an-object"),
    ],
)
def test_configure_refuses_bad_knobs_by_name(
    sandbox: SandboxServer, admin: httpx.Client, payload: object, expected: str
) -> None:
    before = sandbox.state.knobs

    response = admin.post("/configure", json=payload)

    assert (
        error_of(response, 400).detail.removeprefix("invalid sandbox knobs: ").startswith(expected)
    )
    assert sandbox.state.knobs == before


def test_configure_refuses_a_body_that_is_not_json(admin: httpx.Client) -> None:
    assert "not valid JSON" in error_of(admin.post("/configure", content=b"rate=5"), 400).detail


def test_reset_forgets_everything_and_restores_the_initial_knobs(
    sandbox: SandboxServer, appzen: httpx.Client, admin: httpx.Client
) -> None:
    create(appzen, make_invoice())
    admin.post("/configure", json={"latency_ms": 1})

    response = admin.post("/reset")

    assert response.status_code == 200
    state = state_of(admin)
    assert state["invoices"] == {}
    assert state["status_syncs"] == []
    assert state["responses"] == {}
    assert state["accepted_times"] == []
    assert state["knobs"]["latency_ms"] == 0


def test_mutate_changes_what_get_details_answers(
    sandbox: SandboxServer, appzen: httpx.Client, admin: httpx.Client
) -> None:
    uuid = create(appzen, make_invoice("INV-1")).json()["uuid"]
    before = sandbox.state.invoice("INV-1")

    renamed = admin.post("/invoices/INV-1/mutate", json={"path": "supplier_name", "value": "Drift"})
    requantified = admin.post(
        "/invoices/INV-1/mutate",
        content=b'{"path": "invoice_lines.0.quantity", "value": 3.50}',
    )
    deleted = admin.post(
        "/invoices/INV-1/mutate", json={"path": "shipping_address.city", "delete": True}
    )
    details = json.loads(appzen.get(f"/invoice/{uuid}").content, parse_float=Decimal)

    assert [r.status_code for r in (renamed, requantified, deleted)] == [200, 200, 200]
    assert renamed.json()["uuid"] == uuid
    assert details["supplier_name"] == "Drift"
    assert str(details["invoice_lines"][0]["quantity"]) == "3.50"
    assert "city" not in details["shipping_address"]["address"]["address"]
    assert before is not None
    assert before.payload["supplier_name"] == "Supplier 546189"  # records are never changed
    after = sandbox.state.invoice("INV-1")
    assert after is not None
    assert after.versions == 1


def test_mutate_creates_missing_keys_and_handles_ids_with_slashes(
    sandbox: SandboxServer, appzen: httpx.Client, admin: httpx.Client
) -> None:
    create(appzen, make_invoice("AP/2024/7"))

    response = admin.post(
        "/invoices/AP%2F2024%2F7/mutate", json={"path": "custom_json.flag", "value": True}
    )

    assert response.status_code == 200
    stored = sandbox.state.invoice("AP/2024/7")
    assert stored is not None
    assert stored.payload["custom_json"] == {"flag": True}


@pytest.mark.parametrize(
    ("payload", "status", "expected"),
    [
        pytest.param(
            {"path": "invoice_lines.5.quantity", "value": 1}, 400, "invoice_lines.5", id="index"
        ),
        pytest.param(
            {"path": "supplier_name.first", "value": 1}, 400, "supplier_name.first", id="into-str"
        ),
        pytest.param({"path": "a..b", "value": 1}, 400, "empty segment", id="empty-segment"),
        pytest.param({"path": "nope", "delete": True}, 400, "no such key", id="delete-missing"),
        pytest.param({"value": 1}, 400, "path: Field required", id="no-path"),
        pytest.param({"path": "x", "valeu": 1}, 400, "valeu: Extra inputs", id="typo"),
    ],
)
def test_mutate_refuses_paths_that_lead_nowhere(
    sandbox: SandboxServer,
    appzen: httpx.Client,
    admin: httpx.Client,
    payload: dict[str, object],
    status: int,
    expected: str,
) -> None:
    create(appzen, make_invoice("INV-1"))
    before = sandbox.state.invoice("INV-1")

    response = admin.post("/invoices/INV-1/mutate", json=payload)

    assert expected in error_of(response, status).detail
    assert sandbox.state.invoice("INV-1") == before


def test_mutate_of_an_unknown_invoice_is_404(admin: httpx.Client) -> None:
    response = admin.post("/invoices/GHOST/mutate", json={"path": "supplier_name", "value": "x"})

    assert "GHOST" in error_of(response, 404).detail


def test_the_same_operations_work_in_process(sandbox: SandboxServer, appzen: httpx.Client) -> None:
    create(appzen, make_invoice("INV-1"))

    record = sandbox.state.mutate("INV-1", "total_amount.amount", Decimal("9.90"))
    snapshot = sandbox.state.snapshot()

    assert record.payload["total_amount"]["amount"] == Decimal("9.90")
    assert snapshot["invoices"]["INV-1"]["payload"]["total_amount"]["amount"] == Decimal("9.90")
    with pytest.raises(UnknownInvoiceError):
        sandbox.state.mutate("GHOST", "supplier_name", "x")
    with pytest.raises(PathError):
        sandbox.state.mutate("INV-1", "invoice_lines.x", 1)
