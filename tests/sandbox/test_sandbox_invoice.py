"""Create-or-update and get-details over HTTP: upsert, headers, body and schema errors, shapes."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from pipeline.appzen.models import InvoiceDetails
from pipeline.devkit.sandbox import SandboxServer
from tests.sandbox.helpers import (
    UUID4,
    body,
    create,
    error_of,
    make_invoice,
    money,
    vendor_sample,
)


def test_new_invoice_id_is_created_then_updated_with_the_same_uuid(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    first = create(appzen, make_invoice("INV-7"), historical="true")
    second = create(appzen, make_invoice("INV-7", supplier_name="Renamed Ltd"), historical="FALSE")

    assert first.status_code == 201
    assert first.json()["status"] == "CREATED"
    assert UUID4.match(first.json()["uuid"])
    assert second.status_code == 200
    assert second.json() == {"uuid": first.json()["uuid"], "status": "UPDATED"}
    stored = sandbox.state.invoice("INV-7")
    assert stored is not None
    assert stored.uuid == first.json()["uuid"]
    assert stored.versions == 2
    assert stored.historical == (True, False)
    assert stored.payload["supplier_name"] == "Renamed Ltd"
    assert stored.first_received <= stored.last_received


def test_different_invoice_ids_get_different_uuids(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    uuids = {create(appzen, make_invoice(f"INV-{n}")).json()["uuid"] for n in range(3)}

    assert len(uuids) == 3
    assert set(sandbox.state.invoices()) == {"INV-0", "INV-1", "INV-2"}


def test_stored_payload_keeps_decimals_and_unknown_keys(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    invoice = make_invoice(accounting_date_override="2023-12-01T12:00:00Z")
    invoice["invoice_lines"][0]["quantity"] = Decimal("1.250")

    assert create(appzen, invoice).status_code == 201

    stored = sandbox.state.invoice("INV-1")
    assert stored is not None
    assert stored.payload == invoice
    amount = stored.payload["total_amount"]["amount"]
    assert isinstance(amount, Decimal)
    assert str(amount) == "200.00"
    assert str(stored.payload["invoice_lines"][0]["quantity"]) == "1.250"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, "header 'historical' is required", id="missing"),
        pytest.param({"historical": "yes"}, "header 'historical' must be true or false", id="yes"),
        pytest.param({"historical": ""}, "header 'historical' must be true or false", id="empty"),
    ],
)
def test_historical_header_is_required_and_boolean(
    sandbox: SandboxServer, appzen: httpx.Client, headers: dict[str, str], expected: str
) -> None:
    response = appzen.post("/invoice", content=body(make_invoice()), headers=headers)

    assert expected in error_of(response, 400).detail
    assert sandbox.state.invoices() == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(b"{", "body is not valid JSON", id="truncated"),
        pytest.param(b"", "body is not valid JSON", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", "body is not valid JSON", id="not-utf8"),
        pytest.param(b'{"total_amount": {"amount": NaN}}', "NaN is not a JSON number", id="nan"),
        pytest.param(b"[]", "body: Input should be a valid dictionary", id="array"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_refused(
    sandbox: SandboxServer, appzen: httpx.Client, raw: bytes, expected: str
) -> None:
    response = appzen.post("/invoice", content=raw, headers={"historical": "false"})

    assert expected in error_of(response, 400).detail
    assert sandbox.state.invoices() == {}


def test_schema_errors_list_every_field_path(sandbox: SandboxServer, appzen: httpx.Client) -> None:
    invoice = make_invoice(invoice_date="01/02/2021")
    del invoice["invoice_lines"][0]["quantity"]
    invoice["invoice_lines"][0]["unit_price"] = {"amount": Decimal("1.00")}

    detail = error_of(create(appzen, invoice), 400).detail

    parts = detail.split("; ")
    assert "invoice_lines.0.quantity: Field required" in parts
    assert "invoice_lines.0.unit_price.currency: Field required" in parts
    assert any(part.startswith("invoice_date: '01/02/2021' is not an ISO-8601") for part in parts)
    assert len(parts) == 3
    assert sandbox.state.invoices() == {}


def test_the_vendor_sample_is_refused_at_its_rate_typo_then_accepted_fixed(
    appzen: httpx.Client,
) -> None:
    sample = vendor_sample()

    refused = create(appzen, sample)
    sample["invoice_lines"][0]["line_vat_breakdown"][0]["rate"] = 10
    accepted = create(appzen, sample)

    assert error_of(refused, 400).detail.startswith("invoice_lines.0.line_vat_breakdown.0.rate: ")
    assert accepted.status_code == 201


def test_an_oversized_body_is_refused(sandbox: SandboxServer, appzen: httpx.Client) -> None:
    invoice = make_invoice(invoice_description="x" * (6 * 1024 * 1024))

    error_of(create(appzen, invoice), 413)
    assert sandbox.state.invoices() == {}


def test_get_details_nests_the_named_addresses(appzen: httpx.Client) -> None:
    billing = {"address_line1": "TEST CUSTOMER", "zip": "94016", "country": "US"}
    invoice = make_invoice(billing_address=billing, custom_json={"approval-code": "KE-382"})
    uuid = create(appzen, invoice).json()["uuid"]

    response = appzen.get(f"/invoice/{uuid}")

    assert response.status_code == 200
    details = json.loads(response.content, parse_float=Decimal)
    assert details["shipping_address"] == {
        "address_type": "OFFICE",
        "address": {
            "address_type": "OFFICE",
            "address": {
                "address_line1": "TEST COMPANY",
                "city": "SAN FRANCISCO",
                "zip": "94016",
                "country": "US",
            },
            "site_id": "0000",
            "site_name": None,
            "custom_json": None,
        },
    }
    assert details["billing_address"]["address"]["address"] == billing
    assert details["billing_address"]["address_type"] is None
    assert "supplier_address" not in details
    for key in ("invoice_id", "invoice_lines", "supplier_name", "custom_json", "total_amount"):
        assert details[key] == invoice[key]
    parsed = InvoiceDetails.model_validate(details)
    assert parsed.shipping_address is not None
    assert parsed.shipping_address.address is not None
    assert parsed.shipping_address.address.site_id == "0000"


def test_get_details_writes_amounts_as_numbers_with_their_scale(appzen: httpx.Client) -> None:
    invoice = make_invoice(total_amount=money("1200.50"), tax_amount=money("0.10"))
    invoice["invoice_lines"][0]["quantity"] = Decimal("2.000")
    uuid = create(appzen, invoice).json()["uuid"]

    text = appzen.get(f"/invoice/{uuid}").text

    assert '"amount": 1200.50' in text
    assert '"amount": 0.10' in text
    assert '"quantity": 2.000' in text
    assert '"1200.50"' not in text


def test_get_details_of_an_unknown_uuid_is_404(appzen: httpx.Client) -> None:
    response = appzen.get("/invoice/5fc03087-d265-11e7-b8c6-83e29cd24f4c")

    assert "5fc03087-d265-11e7-b8c6-83e29cd24f4c" in error_of(response, 404).detail


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("POST", "/invoices", id="typo-in-route"),
        pytest.param("POST", "/../invoice", id="above-the-prefix"),
        pytest.param("GET", "/invoice/a/b/c", id="too-deep"),
    ],
)
def test_unknown_paths_answer_404_with_the_error_body(
    sandbox: SandboxServer, appzen: httpx.Client, method: str, url: str
) -> None:
    response = appzen.request(method, url, content=body(make_invoice()))

    error = error_of(response, 404)
    assert "cannot be found" in error.detail
    assert sandbox.state.invoices() == {}


def test_a_client_with_a_wrong_base_url_sees_404_on_create(sandbox: SandboxServer) -> None:
    with httpx.Client(base_url=sandbox.root_url + "/api/v2") as client:
        response = client.post("/invoice", content=body(make_invoice()))

    assert "/api/v2/invoice" in error_of(response, 404).detail


def test_a_wrong_method_answers_405_with_the_error_body(appzen: httpx.Client) -> None:
    response = appzen.get("/invoice")

    error_of(response, 405)
    assert response.headers["allow"] == "POST"


def test_every_answer_carries_a_fresh_correlation_id(
    sandbox: SandboxServer, appzen: httpx.Client, admin: httpx.Client
) -> None:
    created = create(appzen, make_invoice())
    responses = [
        created,
        create(appzen, make_invoice()),
        appzen.get(f"/invoice/{created.json()['uuid']}"),
        appzen.post("/invoice", content=b"{", headers={"historical": "true"}),
        appzen.get("/nowhere"),
        admin.get("/state"),
    ]

    ids = [response.headers.get("x-correlation-id", "") for response in responses]
    assert [r.status_code for r in responses] == [201, 200, 200, 400, 404, 200]
    assert all(UUID4.match(cid) for cid in ids), ids
    assert len(set(ids)) == len(ids)
