"""AppZenClient request building and the status → outcome table, with httpx.MockTransport."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.appzen import errors
from pipeline.appzen.client import AppZenClient
from pipeline.appzen.models import Invoice, StatusSyncRequest
from pipeline.settings import Settings, load_settings

API_KEY = "key-AAAA-1111"
CUSTOMER_KEY = "ckey-BBBB-2222"
FIXTURES = Path(__file__).parent.parent / "fixtures"


def settings() -> Settings:
    return load_settings(
        appzen_base_url="https://appzen.test/dictionary-data-services",
        appzen_api_key=API_KEY,
        appzen_customer_id="100094",
        appzen_customer_key=CUSTOMER_KEY,
    )


def invoice() -> Invoice:
    data = json.loads((FIXTURES / "create_sample_request.json").read_text(), parse_float=Decimal)
    data["invoice_lines"][0]["line_vat_breakdown"][0]["rate"] = 10
    return Invoice.model_validate(data)


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> AppZenClient:
    return AppZenClient(settings(), transport=httpx.MockTransport(handler))


def error_body(status: int, text: str = "boom") -> dict[str, Any]:
    return {
        "timestamp": "2019-01-17T16:12:45.977+0000",
        "status": status,
        "error": "x",
        "message": f"Error code : 17e3338d - {text}",
    }


async def test_create_sends_auth_and_historical_headers_and_exact_json() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201, json={"uuid": "u-1", "status": "CREATED"}, headers={"x-correlation-id": "c-1"}
        )

    async with client_for(handler) as client:
        ack = await client.create_or_update(invoice(), historical=True)
    assert (ack.uuid, ack.status, ack.http_status, ack.correlation_id) == (
        "u-1",
        "CREATED",
        201,
        "c-1",
    )
    request = seen[0]
    assert request.url == "https://appzen.test/dictionary-data-services/invoice"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["customer-id"] == "100094"
    assert request.headers["customer-key"] == CUSTOMER_KEY
    assert request.headers["historical"] == "true"
    assert b'"amount":200.00' in request.content


async def test_status_sync_and_get_invoice_paths() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"invoice_id": "794441"})
        return httpx.Response(200)

    body = StatusSyncRequest(
        appzen_invoice_state="CREATED",
        invoice_id="794441",
        invoice_status="POSTED",
        timestamp="2024-01-01T00:00:00Z",
    )
    async with client_for(handler) as client:
        reply = await client.status_sync("a/b", body)
        details = await client.get_invoice("u-9")
    assert reply.http_status == 200
    assert details.invoice_id == "794441"
    assert seen[0].url.raw_path == b"/dictionary-data-services/invoice/a%2Fb/status-sync"
    assert json.loads(seen[0].content)["appzen_invoice_state"] == "CREATED"
    assert seen[1].url.path == "/dictionary-data-services/invoice/u-9"


@pytest.mark.parametrize(
    ("operation", "status", "expected"),
    [
        ("create", 400, errors.InvalidInvoice),
        ("create", 401, errors.CredentialsError),
        ("create", 403, errors.CredentialsError),
        ("create", 404, errors.EndpointNotFound),
        ("by_uuid", 404, errors.UnknownInvoice),
        ("by_uuid", 400, errors.InvalidInvoice),
        ("create", 429, errors.QuotaExceeded),
        ("create", 500, errors.ServerError),
        ("create", 503, errors.ServerError),
        ("create", 408, errors.TransportError),
        ("create", 302, errors.UnexpectedResponse),
        ("create", 418, errors.UnexpectedResponse),
    ],
)
async def test_every_status_maps_to_its_outcome(
    operation: str, status: int, expected: type[errors.AppZenError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            json=error_body(status, "the reason"),
            headers={"x-correlation-id": "corr-7", "retry-after": "3"},
        )

    async with client_for(handler) as client:
        call = (
            client.create_or_update(invoice(), historical=False)
            if operation == "create"
            else client.get_invoice("u-1")
        )
        with pytest.raises(expected) as caught:
            await call
    error = caught.value
    assert type(error) is expected
    assert error.status == status
    assert error.correlation_id == "corr-7"
    assert error.error_code == "17e3338d"
    assert "the reason" in str(error)
    assert "corr-7" in str(error)


@pytest.mark.parametrize(
    ("family", "members"),
    [
        (errors.FatalError, [errors.CredentialsError, errors.EndpointNotFound]),
        (errors.RetryableError, [errors.QuotaExceeded, errors.ServerError, errors.TransportError]),
        (errors.RowError, [errors.InvalidInvoice, errors.UnknownInvoice]),
    ],
)
def test_outcome_families(family: type[Exception], members: list[type[Exception]]) -> None:
    assert all(issubclass(member, family) for member in members)


async def test_429_carries_retry_after() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json=error_body(429), headers={"retry-after": "7"})

    async with client_for(handler) as client:
        with pytest.raises(errors.QuotaExceeded) as caught:
            await client.create_or_update(invoice(), historical=False)
    assert caught.value.retry_after == 7.0


async def test_a_non_json_error_body_still_gives_its_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    async with client_for(handler) as client:
        with pytest.raises(errors.ServerError, match="Bad gateway"):
            await client.create_or_update(invoice(), historical=False)


@pytest.mark.parametrize(
    "exception",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("drop")],
)
async def test_transport_failures_are_retryable(exception: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    async with client_for(handler) as client:
        with pytest.raises(errors.TransportError):
            await client.create_or_update(invoice(), historical=False)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(201, text="not json"),
        httpx.Response(200, json={"uuid": "u", "status": "MAYBE"}),
        httpx.Response(204),
    ],
)
async def test_a_malformed_success_is_fatal_not_guessed(response: httpx.Response) -> None:
    async with client_for(lambda request: response) as client:
        with pytest.raises(errors.UnexpectedResponse):
            await client.create_or_update(invoice(), historical=False)


async def test_no_secret_in_exceptions_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json=error_body(401, "Unable to authenticate credentials"))

    texts = []
    async with client_for(handler) as client:
        for call in (
            client.create_or_update(invoice(), historical=False),
            client.get_invoice("u-1"),
        ):
            with pytest.raises(errors.CredentialsError) as caught:
                await call
            texts += [str(caught.value), repr(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    joined = "\n".join(texts)
    assert "check APPZEN_API_KEY" in joined
    assert API_KEY not in joined
    assert CUSTOMER_KEY not in joined


def test_tls_off_is_logged_loudly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    insecure = settings().model_copy(update={"appzen_verify_tls": False})
    AppZenClient(insecure)
    assert "TLS certificate verification is OFF" in caplog.text
