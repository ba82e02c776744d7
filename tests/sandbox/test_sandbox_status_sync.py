"""Status-sync over HTTP: 200 with an empty body and recorded; 404 unknown uuid; 400 errors."""

from __future__ import annotations

import httpx
import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.sandbox.helpers import body, create, error_of, make_invoice, sync_body


@pytest.fixture
def uuid(appzen: httpx.Client) -> str:
    """The uuid of invoice INV-1, stored in the sandbox."""
    uuid: str = create(appzen, make_invoice("INV-1")).json()["uuid"]
    return uuid


def push(client: httpx.Client, uuid: str, payload: object) -> httpx.Response:
    return client.post(f"/invoice/{uuid}/status-sync", content=body(payload))


def test_accepted_pushes_answer_200_empty_and_are_recorded_in_order(
    sandbox: SandboxServer, appzen: httpx.Client, uuid: str
) -> None:
    first = push(appzen, uuid, sync_body(invoice_status="PARKED"))
    second = push(appzen, uuid, sync_body(invoice_status="PAID", extra_note="kept"))

    for response in (first, second):
        assert response.status_code == 200
        assert response.content == b""
    pushes = sandbox.state.pushes()
    assert [p.sync["invoice_status"] for p in pushes] == ["PARKED", "PAID"]
    assert all(p.uuid == uuid and p.invoice_id == "INV-1" for p in pushes)
    assert pushes[1].body == sync_body(invoice_status="PAID", extra_note="kept")
    assert pushes[1].sync["extra_note"] == "kept"
    assert pushes[0].received_at <= pushes[1].received_at


def test_hyphenated_keys_are_accepted_and_understood(
    sandbox: SandboxServer, appzen: httpx.Client, uuid: str
) -> None:
    hyphenated = {
        "appzen-invoice-state": "CREATED",
        "invoice-id": "INV-1",
        "invoice-status": "APPROVED",
        "timestamp": "2020-11-01T11:01:00Z",
    }

    response = push(appzen, uuid, hyphenated)

    assert response.status_code == 200
    (recorded,) = sandbox.state.pushes()
    assert recorded.body == hyphenated
    assert recorded.sync == {
        "appzen_invoice_state": "CREATED",
        "invoice_id": "INV-1",
        "invoice_status": "APPROVED",
        "timestamp": "2020-11-01T11:01:00Z",
    }


def test_an_error_state_with_its_error_data_is_accepted(
    sandbox: SandboxServer, appzen: httpx.Client, uuid: str
) -> None:
    error_data = {"message": "vendor blocked", "status": "REJECTED", "exception": "E42"}
    payload = {
        "appzen_invoice_state": "ERROR",
        "timestamp": "2020-11-01T11:01:00Z",
        "error_data": error_data,
    }

    assert push(appzen, uuid, payload).status_code == 200
    assert sandbox.state.pushes()[0].sync["error_data"] == error_data


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            sync_body(invoice_id=None),
            "body: state CREATED needs invoice_id and invoice_status",
            id="created-without-invoice-id",
        ),
        pytest.param(
            {"appzen_invoice_state": "ERROR", "timestamp": "2020-11-01T11:01:00Z"},
            "body: state ERROR needs error_data",
            id="error-without-error-data",
        ),
        pytest.param(
            {"invoice_id": "INV-1", "invoice_status": "PAID", "timestamp": "2020-11-01"},
            "appzen_invoice_state: Field required",
            id="no-state",
        ),
        pytest.param(
            sync_body(appzen_invoice_state="DONE"),
            "appzen_invoice_state: Input should be 'CREATED' or 'ERROR'",
            id="unknown-state",
        ),
        pytest.param(
            sync_body(timestamp="yesterday"),
            "timestamp: 'yesterday' is not an ISO-8601",
            id="bad-timestamp",
        ),
        pytest.param(["not", "an", "object"], "body: Input should be", id="array"),
    ],
)
def test_invalid_bodies_are_refused_with_their_field_paths(
    sandbox: SandboxServer, appzen: httpx.Client, uuid: str, payload: object, expected: str
) -> None:
    detail = error_of(push(appzen, uuid, payload), 400).detail

    assert detail.startswith(expected), detail
    assert sandbox.state.pushes() == []


def test_a_body_that_is_not_json_is_refused(
    sandbox: SandboxServer, appzen: httpx.Client, uuid: str
) -> None:
    response = appzen.post(f"/invoice/{uuid}/status-sync", content=b"state=CREATED")

    assert "body is not valid JSON" in error_of(response, 400).detail
    assert sandbox.state.pushes() == []


def test_an_unknown_uuid_is_404_before_the_body_is_read(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    valid = push(appzen, "00000000-0000-4000-8000-000000000000", sync_body())
    garbage = appzen.post("/invoice/nope/status-sync", content=b"{")

    assert "00000000-0000-4000-8000-000000000000" in error_of(valid, 404).detail
    error_of(garbage, 404)
    assert sandbox.state.pushes() == []
