"""The CRM.COM client over loopback HTTP: login, token expiry and renewal (on the client's clock
and on CRM.COM's), DRAFT-only rejection, status.code checked on HTTP 200, the reason map."""

from __future__ import annotations

import httpx
import pytest

from pipeline.connectors.crm import CrmClient, CrmCredentials, CrmEndpoint, crm_credentials
from pipeline.connectors.errors import (
    CrmFatal,
    CrmRowError,
    CrmThrottled,
    NotDraft,
)
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.crm import CrmState
from pipeline.settings import Settings, SettingsError, load_settings
from pipeline.writeback.config import ReasonsSpec
from tests.support.clock import FakeClock

REASON = ("name", "Reject Due to Error")


@pytest.fixture
def client_parts(
    sandbox: SandboxServer, wb_settings: Settings
) -> tuple[CrmEndpoint, CrmCredentials]:
    """The endpoint (two-hour tokens, renewed five minutes early) and the sandbox login."""
    return CrmEndpoint(sandbox.crm_url), crm_credentials(wb_settings, sandbox.crm_url)


async def test_rejects_a_draft_invoice_and_reads_back_its_state(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    crm.add_invoice("559")
    async with CrmClient(*client_parts) as client:
        invoice = await client.reject_draft(("reference_number", "559"), REASON)
    assert invoice.life_cycle_state == "REJECTED"
    assert crm.invoice("reference_number", "559")["rejection_reason"] == "Reject Due to Error"  # type: ignore[index]
    assert crm.requests == {"login": 1, "reject": 1, "show": 1}


@pytest.mark.parametrize("state", ["POSTED", "CANCELLED"])
async def test_an_invoice_no_longer_draft_is_not_rejected(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials], state: str
) -> None:
    crm.add_invoice("560", state)
    async with CrmClient(*client_parts) as client:
        with pytest.raises(NotDraft, match=f"is {state}, not DRAFT") as caught:
            await client.reject_draft(("reference_number", "560"), REASON)
    assert caught.value.state == state
    assert caught.value.error_code == "INVALID_LIFE_CYCLE_STATE"
    assert crm.invoice("reference_number", "560")["life_cycle_state"] == state  # type: ignore[index]


async def test_an_invoice_already_rejected_counts_as_done(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    crm.add_invoice("561", "REJECTED")
    async with CrmClient(*client_parts) as client:
        invoice = await client.reject_draft(("reference_number", "561"), REASON)
    assert invoice.life_cycle_state == "REJECTED"


@pytest.mark.parametrize("field", ["id", "number"])
async def test_the_identifier_field_is_configurable(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials], field: str
) -> None:
    added = crm.add_invoice("562", number="I00000562")
    async with CrmClient(*client_parts) as client:
        invoice = await client.reject_draft((field, added[field]), REASON)  # type: ignore[arg-type]
    assert (invoice.reference_number, invoice.life_cycle_state) == ("562", "REJECTED")


async def test_the_token_is_renewed_before_it_expires_on_the_clients_clock(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    clock = FakeClock()
    crm.add_invoice("1")
    async with CrmClient(*client_parts, clock=clock) as client:
        await client.show(("reference_number", "1"))
        clock.advance(7200 - 301)  # still more than five minutes left
        await client.show(("reference_number", "1"))
        assert client.logins == 1
        clock.advance(2)  # inside the five minutes before expiry
        await client.show(("reference_number", "1"))
        assert client.logins == 2
    assert crm.requests["login"] == 2


async def test_a_token_crm_expired_early_gets_one_fresh_login(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    crm.add_invoice("1")
    async with CrmClient(*client_parts, clock=FakeClock()) as client:
        await client.show(("reference_number", "1"))
        crm.advance(7201)  # CRM.COM's clock: the token expired there
        invoice = await client.show(("reference_number", "1"))
        assert client.logins == 2
    assert invoice.reference_number == "1"
    assert crm.requests["show"] == 3, "refused with INVALID_TOKEN, then repeated"


async def test_invalid_token_twice_is_fatal(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    async with CrmClient(*client_parts) as client:
        await client.login()
        crm.configure(fail_next=["show:INVALID_TOKEN", "show:INVALID_TOKEN"])
        with pytest.raises(CrmFatal, match="a fresh login was refused too"):
            await client.show(("reference_number", "1"))


async def test_bad_credentials_are_fatal_and_the_password_never_shows(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    endpoint, good = client_parts
    wrong = CrmCredentials(good.username, "not-the-password", good.organisation)
    async with CrmClient(endpoint, wrong) as client:
        with pytest.raises(CrmFatal, match="CRM_USERNAME, CRM_PASSWORD") as caught:
            await client.show(("reference_number", "1"))
    assert caught.value.error_code == "AUTHENTICATION_FAILED"
    assert caught.value.status == 200, "CRM.COM answers errors with HTTP 200: status.code decides"
    assert "not-the-password" not in repr(caught.value) + repr(wrong)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (("name", "No Such Reason"), "INVALID_REJECTION_REASON"),
        (("name", "Reject Due to Error"), "NOT_FOUND"),
    ],
)
async def test_status_codes_on_http_200_fail_the_row(
    crm: CrmState,
    client_parts: tuple[CrmEndpoint, CrmCredentials],
    reason: tuple[str, str],
    code: str,
) -> None:
    if code != "NOT_FOUND":
        crm.add_invoice("563")
    async with CrmClient(*client_parts) as client:
        with pytest.raises(CrmRowError) as caught:
            await client.reject_draft(("reference_number", "563"), reason)
    assert (caught.value.error_code, caught.value.status) == (code, 200)


async def test_an_unknown_code_fails_the_row_with_crms_message(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    async with CrmClient(*client_parts) as client:
        await client.login()
        crm.configure(fail_next=["SOMETHING_NEW"])
        with pytest.raises(CrmRowError, match=r"Unknown CRM\.COM error") as caught:
            await client.show(("reference_number", "1"))
    assert caught.value.error_code == "SOMETHING_NEW"


async def test_too_many_requests_is_throttled(
    crm: CrmState, client_parts: tuple[CrmEndpoint, CrmCredentials]
) -> None:
    async with CrmClient(*client_parts) as client:
        await client.login()
        crm.configure(fail_next=["TOO_MANY_REQUESTS"])
        with pytest.raises(CrmThrottled) as caught:
            await client.show(("reference_number", "1"))
    assert caught.value.status == 429


async def test_a_wrong_base_url_is_fatal(sandbox: SandboxServer) -> None:
    endpoint = CrmEndpoint(sandbox.root_url + "/not-crm")
    async with CrmClient(endpoint, CrmCredentials("u", "p", "o")) as client:
        with pytest.raises(CrmFatal, match="the base URL does not point at the API"):
            await client.login()


async def test_an_answer_without_status_code_is_fatal() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"token": "T"}})  # no status object

    transport = httpx.MockTransport(answer)
    endpoint = CrmEndpoint("https://crm.example.com/crmapi/rest/v2")
    async with CrmClient(endpoint, CrmCredentials("u", "p", "o"), transport=transport) as client:
        with pytest.raises(CrmFatal, match=r"is crm\.base_url"):
            await client.login()


def test_the_reason_map_is_case_insensitive_with_a_default() -> None:
    reasons = ReasonsSpec(
        default="Reject Due to Error", map={"Duplicate_Invoice_Amount": "Reject Due to Duplicate"}
    )
    assert reasons.reason_for("duplicate_invoice_amount ") == "Reject Due to Duplicate"
    assert reasons.reason_for("price_variance") == "Reject Due to Error"
    assert reasons.reason_for(None) == "Reject Due to Error"


def test_credentials_are_required_off_the_sandbox(wb_settings: Settings) -> None:
    with pytest.raises(SettingsError, match="CRM_USERNAME, CRM_PASSWORD, CRM_ORGANISATION"):
        crm_credentials(wb_settings, "https://crm.example.com/crmapi/rest/v2")
    given = load_settings(crm_username="etl", crm_password="s3cret!", crm_organisation="ACME")
    found = crm_credentials(given, "https://crm.example.com/crmapi/rest/v2")
    assert (found.username, found.organisation) == ("etl", "ACME")
    assert "s3cret!" not in repr(found)
