"""The one Retry-After parser every client uses: both header forms, the cap, nonsense ignored."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from pipeline.runtime.http import MAX_RETRY_AFTER, response_retry_after, retry_after


def test_retry_after_forms() -> None:
    assert retry_after(None) is None
    assert retry_after("") is None
    assert retry_after("2.5") == 2.5
    assert retry_after("-4") == 0.0
    assert retry_after("99999") == MAX_RETRY_AFTER == 300.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None
    assert retry_after("nan") is None


def test_an_http_date_counts_from_now() -> None:
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0


def test_a_response_header_is_read() -> None:
    assert response_retry_after(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    assert response_retry_after(httpx.Response(429)) is None
