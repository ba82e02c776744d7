"""The merchant platform client over loopback HTTP: token refresh on 908, and every message ID's
outcome (911, 904, 912 fatal; 913 a failed row; 919 / 429 back off; 899 retried; 206 success)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pipeline.connectors.errors import (
    MerchantError,
    MerchantFatal,
    MerchantRowError,
    MerchantThrottled,
    MerchantUnavailable,
)
from pipeline.connectors.merchant import (
    MerchantClient,
    MerchantCredentials,
    MerchantEndpoint,
    with_appzen_note,
    without_appzen_note,
)
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.runtime.retry import RetriesExhausted, RetryPolicy, call_with_retries
from pipeline.settings import SANDBOX_MERCHANT
from tests.support.clock import FakeClock

INVOICE = 880100


async def test_reads_invoices_by_store_with_a_refreshed_token(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        invoices = await client.list_invoices(store_ids=[15])
        assert client.refreshes == 1, "no access token was configured: refreshed first"
    assert [i["id"] for i in invoices] == [880101, 880103, 880105, 880108]
    assert all(isinstance(i["invoiceItems"], list) for i in invoices)
    assert merchant.accept_versions == {"2": 1}


async def test_908_refreshes_once_and_repeats_the_call(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices(invoice_ids=[INVOICE])
        merchant.configure(expire_tokens=True)
        reply = await client.update_note(INVOICE, "checked")
        assert client.refreshes == 2
    assert (reply.http_status, reply.messages) == (201, (206,)), "201 with message 206: success"
    assert merchant.requests["POST /invoice"] == 2, "the expired call, then its repeat"
    assert merchant.invoice(INVOICE)["note"] == "checked"  # type: ignore[index]


async def test_concurrent_calls_share_one_refresh(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices(invoice_ids=[INVOICE])
        merchant.configure(expire_tokens=True)
        await asyncio.gather(*(client.list_invoices(invoice_ids=[INVOICE]) for _ in range(6)))
        assert client.refreshes == 2, "six 908s, one refresh"
    assert merchant.requests["POST /oauth/token"] == 2


async def test_908_again_after_the_refresh_is_fatal(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices()
        merchant.configure(fail_next=[908, 908])
        with pytest.raises(MerchantFatal, match="again right after a token refresh") as caught:
            await client.update_note(INVOICE, "x")
    assert caught.value.error_code == "908"
    assert "MERCHANT_REFRESH_TOKEN" in str(caught.value)


async def test_a_refused_refresh_token_is_fatal_and_never_shown(
    merchant: MerchantState, endpoint: MerchantEndpoint
) -> None:
    wrong = MerchantCredentials(SANDBOX_MERCHANT[0], SANDBOX_MERCHANT[1], "stale-refresh-token")
    async with MerchantClient(endpoint, wrong) as client:
        with pytest.raises(MerchantFatal, match="MERCHANT_REFRESH_TOKEN") as caught:
            await client.list_invoices()
    assert caught.value.error_code == "907"
    assert "stale-refresh-token" not in str(caught.value)
    assert SANDBOX_MERCHANT[1] not in str(caught.value), "nor the client secret"


async def test_a_rotated_refresh_token_is_kept(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    merchant.configure(rotate_refresh=True)
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices()
        merchant.configure(expire_tokens=True)
        await client.list_invoices()
        assert client.refreshes == 2, "the second refresh used the rotated token"


@pytest.mark.parametrize(
    ("knobs", "message_id", "words"),
    [
        ({"fail_next": [911]}, "911", "Authorization Header Invalid"),
        ({"denied": True}, "904", "Access Denied"),
        ({"owned_stores": [99]}, "912", "does not own these stores"),
    ],
)
async def test_911_904_912_are_fatal(
    merchant: MerchantState,
    endpoint: MerchantEndpoint,
    credentials: MerchantCredentials,
    knobs: dict[str, Any],
    message_id: str,
    words: str,
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        merchant.configure(**knobs)
        with pytest.raises(MerchantFatal, match=words) as caught:
            await client.list_invoices(store_ids=[12])
    assert caught.value.error_code == message_id


async def test_a_malformed_bearer_header_is_911(
    merchant: MerchantState, endpoint: MerchantEndpoint
) -> None:
    bad = MerchantCredentials(*SANDBOX_MERCHANT, access_token="two words")
    async with MerchantClient(endpoint, bad) as client:
        with pytest.raises(MerchantFatal) as caught:
            await client.list_invoices()
    assert caught.value.error_code == "911"
    assert client.refreshes == 0, "911 is not an expired token: no refresh"


async def test_913_is_a_failed_row_and_the_others_go_on(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    merchant.configure(fail_invoices={880101: 913})
    dispatcher = _dispatcher(RetryPolicy(3, base_delay=0.0, max_delay=0.0))
    async with MerchantClient(endpoint, credentials) as client:
        report = await dispatcher.run(
            [880100, 880101, 880102], lambda key: client.update_note(key, "n")
        )
    errors = {r.item: r.error for r in report.results}
    assert report.fatal is None
    assert errors[880100] is None
    assert errors[880102] is None
    assert isinstance(errors[880101], MerchantRowError)
    assert errors[880101].error_code == "913"
    assert merchant.requests["POST /invoice"] == 3, "a row error is not retried"


async def test_910_for_an_unknown_invoice_is_a_failed_row(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        with pytest.raises(MerchantRowError) as caught:
            await client.update_note(12345, "n")
    assert caught.value.error_code == "910"


async def test_919_backs_off_then_succeeds(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    clock = FakeClock()
    limiter = AdaptiveRateLimiter(50, clock=clock)
    async with MerchantClient(endpoint, credentials) as client:
        merchant.configure(fail_next=[919])
        done = await call_with_retries(
            lambda: client.list_invoices(invoice_ids=[INVOICE]),
            RetryPolicy(4, base_delay=0.01, max_delay=0.01),
            clock,
            limiter=limiter,
        )
    assert done.attempts == 2
    assert limiter.current_rate < 50, "the limiter slowed down on 919"
    assert max(clock.slept) >= 1.0, "Retry-After: 1 was honoured"


async def test_http_429_from_the_rate_limit_backs_off_then_succeeds(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices()
        merchant.configure(rate=5)
        calls = [client.list_invoices(invoice_ids=[INVOICE]) for _ in range(8)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        throttled = [o for o in outcomes if isinstance(o, MerchantThrottled)]
        assert throttled, "more than the 5 banked tokens at once: some are throttled"
        done = await call_with_retries(
            lambda: client.list_invoices(invoice_ids=[INVOICE]),
            RetryPolicy(4, base_delay=0.0, max_delay=0.0),
            SYSTEM_CLOCK,
        )
    assert done.value[0]["id"] == INVOICE


async def test_919_is_a_quota_error_with_retry_after(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(endpoint, credentials) as client:
        merchant.configure(fail_next=[919])
        with pytest.raises(MerchantThrottled) as caught:
            await client.list_invoices()
    assert (caught.value.status, caught.value.error_code, caught.value.retry_after) == (
        429,
        "919",
        1.0,
    )


async def test_899_is_retried_and_gives_up_after_the_attempts(
    merchant: MerchantState, endpoint: MerchantEndpoint, credentials: MerchantCredentials
) -> None:
    policy = RetryPolicy(3, base_delay=0.0, max_delay=0.0)
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices()
        merchant.configure(fail_next=[899])
        done = await call_with_retries(client.list_invoices, policy, FakeClock())
        assert done.attempts == 2
        merchant.configure(fail_next=[899, 899, 899])
        with pytest.raises(RetriesExhausted) as caught:
            await call_with_retries(client.list_invoices, policy, FakeClock())
    assert isinstance(caught.value.last_error, MerchantUnavailable)
    assert caught.value.last_error.error_code == "899"


async def test_the_accept_version_is_configurable(
    merchant: MerchantState, sandbox_url: str, credentials: MerchantCredentials
) -> None:
    async with MerchantClient(MerchantEndpoint(sandbox_url, accept_version="3"), credentials) as c:
        await c.list_invoices()
    assert merchant.accept_versions == {"3": 1}


async def test_no_answer_is_a_retryable_transport_error(credentials: MerchantCredentials) -> None:
    async with MerchantClient(MerchantEndpoint("http://127.0.0.1:9/merchant"), credentials) as c:
        with pytest.raises(MerchantError) as caught:
            await c.list_invoices()
    assert type(caught.value).__name__ == "MerchantTransport"
    assert "merchant platform: no answer" in str(caught.value)


def test_the_note_tag_replaces_an_older_one_and_keeps_the_merchants_text() -> None:
    first = with_appzen_note("Lieferung Filiale Köln", "u-1", "CREATED")
    assert first == "Lieferung Filiale Köln [AppZen u-1 CREATED]"
    second = with_appzen_note(first, "u-1", "REJECTED", "duplicate [x]\nline")
    assert second == "Lieferung Filiale Köln [AppZen u-1 REJECTED: duplicate (x) line]"
    assert with_appzen_note(None, "u-2", "APPROVED") == "[AppZen u-2 APPROVED]"
    assert without_appzen_note({"id": 1, "note": second}) == {
        "id": 1,
        "note": "Lieferung Filiale Köln",
    }


def _dispatcher(policy: RetryPolicy) -> Dispatcher:
    clock = FakeClock()
    return Dispatcher(
        limiter=AdaptiveRateLimiter(500, clock=clock), policy=policy, clock=clock, concurrency=4
    )


@pytest.fixture
def sandbox_url(endpoint: MerchantEndpoint) -> str:
    """The sandbox merchant platform's root."""
    return endpoint.base_url
