"""pipeline.redact: registered secrets, URL passwords and credential-shaped echoes become ``***``;
ordinary text that only mentions a credential stays as it is."""

from __future__ import annotations

import logging

import pytest

from pipeline import redact
from pipeline.redact import SecretFilter, scrub, scrub_credentials, scrub_optional

ECHOES = [
    ("x-api-key: sk-123 rest", "x-api-key: *** rest"),
    ("X-API-KEY=sk-123&next=1", "X-API-KEY=***&next=1"),
    (
        '{"x-api-key": "abc def", "customer-id": "100094"}',
        '{"x-api-key": "***", "customer-id": "100094"}',
    ),
    ("{'customer-key': 'ck-1'}", "{'customer-key': '***'}"),
    ("customer_key=ck-2, next", "customer_key=***, next"),
    ("Authorization: Bearer eyJ.abc.def", "Authorization: Bearer ***"),
    ("authorization=Basic dXNlcjpwYXNz;", "authorization=Basic ***;"),
    ('"authorization": "Bearer a b"', '"authorization": "Bearer ***"'),
    ("sent Bearer abcdef123456 to it", "sent Bearer *** to it"),
    ("sent Basic dXNlcjpwYXNz", "sent Basic ***"),
    ("https://h/x?api_key=zzz&b=1", "https://h/x?api_key=***&b=1"),
    ("password=hunter2", "password=***"),
    ("invalid api key: abcd1234", "invalid api key: ***"),
    ("refresh_token: r-1; access_token: a-1", "refresh_token: ***; access_token: ***"),
    ("client_secret=s3", "client_secret=***"),
]

UNTOUCHED = [
    "Unable to authenticate credentials (check x-api-key)",
    "This x-api-key has no permission for the customer-id sent (check customer-id)",
    "Basic information about the invoice",
    "supplier_id: 'V1' is not a supplier of this customer",
    "customer-id: 100094",
    "Bearer ***",
]


@pytest.mark.parametrize(("text", "expected"), ECHOES)
def test_credential_shaped_echoes_are_masked(text: str, expected: str) -> None:
    assert scrub_credentials(text) == expected
    assert scrub(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_text_that_only_names_a_credential_stays(text: str) -> None:
    assert scrub(text) == text


def test_registered_secret_is_masked_bare_and_url_passwords_too() -> None:
    redact.register("bare-secret-9c1d")
    text = "caller bare-secret-9c1d at postgresql://u:pw@h/db"
    assert scrub(text) == "caller *** at postgresql://u:***@h/db"


def test_scrub_optional_passes_none() -> None:
    assert scrub_optional(None) is None
    assert scrub_optional("password=x1") == "password=***"


def test_log_filter_masks_an_echo_in_a_record() -> None:
    record = logging.LogRecord(
        "t", logging.ERROR, __file__, 1, "AppZen said %s", ("x-api-key: k9",), None
    )
    assert SecretFilter().filter(record)
    assert record.getMessage() == "AppZen said x-api-key: ***"
