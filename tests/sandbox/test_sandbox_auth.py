"""Auth on every AppZen route (401 / 403), AppZen's error body, and the correlation id."""

from __future__ import annotations

import httpx
import pytest

from pipeline.devkit.sandbox import Credentials, SandboxServer
from tests.sandbox.helpers import (
    API_KEY,
    AUTH,
    CUSTOMER_KEY,
    UUID4,
    body,
    create,
    error_of,
    make_invoice,
    sync_body,
)

BAD_CREDENTIALS = [
    pytest.param({"x-api-key": None}, 401, "x-api-key", id="missing-api-key"),
    pytest.param({"x-api-key": "wrong-api-key-42"}, 401, "x-api-key", id="wrong-api-key"),
    pytest.param({"customer-key": None}, 401, "customer-key", id="missing-customer-key"),
    pytest.param({"customer-key": "wrong-ckey-42"}, 401, "customer-key", id="wrong-customer-key"),
    pytest.param({"customer-id": None}, 401, "customer-id", id="missing-customer-id"),
    pytest.param({"customer-id": "999999"}, 403, "customer-id", id="other-customer-id"),
]


def headers_with(changes: dict[str, str | None]) -> dict[str, str]:
    headers = dict(AUTH)
    for name, value in changes.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    return headers


def call_route(route: str, headers: dict[str, str], base: str, uuid: str) -> httpx.Response:
    invoice_body = body(make_invoice("AUTH-2"))
    with httpx.Client(base_url=base, headers=headers) as client:
        if route == "create":
            return client.post("/invoice", content=invoice_body, headers={"historical": "false"})
        if route == "get":
            return client.get(f"/invoice/{uuid}")
        return client.post(f"/invoice/{uuid}/status-sync", content=body(sync_body()))


@pytest.mark.parametrize("route", ["create", "get", "status-sync"])
@pytest.mark.parametrize(("changes", "status", "names"), BAD_CREDENTIALS)
def test_bad_credentials_are_refused_on_every_route(
    sandbox: SandboxServer,
    appzen: httpx.Client,
    route: str,
    changes: dict[str, str | None],
    status: int,
    names: str,
) -> None:
    uuid = create(appzen, make_invoice("AUTH-1")).json()["uuid"]

    response = call_route(route, headers_with(changes), sandbox.base_url, uuid)

    error = error_of(response, status)
    assert names in error.detail
    assert set(sandbox.state.invoices()) == {"AUTH-1"}
    assert sandbox.state.pushes() == []


@pytest.mark.parametrize(("changes", "status", "names"), BAD_CREDENTIALS)
def test_error_messages_never_echo_a_key(
    sandbox: SandboxServer, changes: dict[str, str | None], status: int, names: str
) -> None:
    response = call_route("create", headers_with(changes), sandbox.base_url, "x")

    assert response.status_code == status
    for secret in (API_KEY, CUSTOMER_KEY, "wrong-api-key-42", "wrong-ckey-42"):
        assert secret not in response.text


def test_each_error_has_a_fresh_code_and_correlation_id(sandbox: SandboxServer) -> None:
    responses = [call_route("create", {}, sandbox.base_url, "x") for _ in range(3)]

    codes = {error_of(response, 401).error_code for response in responses}
    correlation_ids = {response.headers["x-correlation-id"] for response in responses}
    assert len(codes) == 3
    assert len(correlation_ids) == 3
    assert all(UUID4.match(cid) for cid in correlation_ids)


def test_auth_is_checked_before_the_historical_header_and_the_body(
    sandbox: SandboxServer,
) -> None:
    with httpx.Client(base_url=sandbox.base_url) as client:
        response = client.post("/invoice", content=b"not json")

    error_of(response, 401)


def test_configured_credentials_replace_the_defaults() -> None:
    credentials = Credentials(api_key="k-1", customer_id="42", customer_key="ck-1")
    own = {"x-api-key": "k-1", "customer-id": "42", "customer-key": "ck-1"}
    with SandboxServer(credentials=credentials) as server, httpx.Client() as client:
        url = server.base_url + "/invoice"
        invoice = body(make_invoice())
        accepted = client.post(url, content=invoice, headers={**own, "historical": "true"})
        refused = client.post(url, content=invoice, headers={**AUTH, "historical": "true"})
        other = client.post(
            url, content=invoice, headers={**own, "customer-id": "100094", "historical": "true"}
        )

    assert accepted.status_code == 201
    error_of(refused, 401)
    error_of(other, 403)
    assert "ck-1" not in repr(credentials)
    assert "k-1" not in repr(credentials)


def test_echo_credentials_quotes_the_request_keys_in_every_refusal(sandbox: SandboxServer) -> None:
    """The knob the secret-echo tests use: a refusal quotes the keys, named and bare."""
    sandbox.state.configure(echo_credentials=True)
    wrong = headers_with({"customer-id": "999999"})
    for route in ("create", "status-sync"):
        message = error_of(call_route(route, wrong, sandbox.base_url, "x"), 403).message or ""
        assert f"x-api-key: {API_KEY}" in message
        assert f"customer-key: {CUSTOMER_KEY}" in message
        assert f"[caller {API_KEY}/{CUSTOMER_KEY}]" in message
    admin = httpx.post(f"{sandbox.root_url}/_sandbox/configure", json={"nope": 1}, headers=AUTH)
    assert admin.status_code == 400
    assert API_KEY not in admin.text  # admin routes are not AppZen's: no echo
