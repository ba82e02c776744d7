"""Building requests for the sandbox tests: a small valid invoice, auth headers, raw JSON bodies."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from pipeline.appzen.models import ErrorBody
from pipeline.devkit.sandbox.wire import dumps_exact
from pipeline.settings import SANDBOX_CREDENTIALS

FIXTURES = Path(__file__).parent.parent / "fixtures"
API_KEY, CUSTOMER_ID, CUSTOMER_KEY = SANDBOX_CREDENTIALS
AUTH = {"x-api-key": API_KEY, "customer-id": CUSTOMER_ID, "customer-key": CUSTOMER_KEY}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ERROR_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")


def money(amount: str, currency: str = "USD") -> dict[str, Any]:
    return {"amount": Decimal(amount), "currency": currency}


def make_invoice(invoice_id: str = "INV-1", **overrides: Any) -> dict[str, Any]:
    """A small valid create payload with a flat shipping address and one line."""
    invoice: dict[str, Any] = {
        "invoice_id": invoice_id,
        "invoice_number": f"N-{invoice_id}",
        "invoice_date": "2021-01-01T00:00:00Z",
        "entity_id": "422626",
        "supplier_id": "546189",
        "supplier_name": "Supplier 546189",
        "total_amount": money("200.00"),
        "shipping_address": {
            "address_type": "OFFICE",
            "address_line1": "TEST COMPANY",
            "city": "SAN FRANCISCO",
            "zip": "94016",
            "country": "US",
            "site_id": "0000",
        },
        "invoice_lines": [
            {
                "line_number": 1,
                "line_description": "DESCRIPTION1",
                "quantity": 1,
                "unit_price": money("200.00"),
                "total_amount": money("200.00"),
            }
        ],
    }
    invoice.update(overrides)
    return invoice


def body(value: object) -> bytes:
    """JSON with exact decimals, as the pipeline sends it."""
    return dumps_exact(value)


def vendor_sample() -> dict[str, Any]:
    """The create page's sample request, as published (with its ``"rate": "10a"`` typo)."""
    data: dict[str, Any] = json.loads(
        (FIXTURES / "create_sample_request.json").read_text(), parse_float=Decimal
    )
    return data


def create(
    client: httpx.Client, invoice: dict[str, Any], historical: str = "false"
) -> httpx.Response:
    """``POST /invoice`` with the ``historical`` header."""
    return client.post("/invoice", content=body(invoice), headers={"historical": historical})


def sync_body(invoice_id: str | None = "INV-1", **overrides: Any) -> dict[str, Any]:
    """A valid status-sync body in state CREATED."""
    data: dict[str, Any] = {
        "appzen_invoice_state": "CREATED",
        "invoice_id": invoice_id,
        "invoice_status": "POSTED",
        "timestamp": "2020-11-01T11:01:00Z",
    }
    data.update(overrides)
    return data


def error_of(response: httpx.Response, status: int) -> ErrorBody:
    """Check ``response`` is AppZen's error body with ``status``; return it parsed."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = ErrorBody.model_validate_json(response.content)
    assert error.status == status
    assert error.error == httpx.codes.get_reason_phrase(status)
    assert error.timestamp is not None
    assert ERROR_TIMESTAMP.match(error.timestamp)
    assert error.error_code is not None
    assert re.fullmatch(r"[0-9a-f]{8}", error.error_code)
    return error
