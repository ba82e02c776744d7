"""HTTP helpers every client shares (AppZen, merchant platform, CRM.COM): one pooled httpx client
per system, JSON bodies read with exact decimals, and the one ``Retry-After`` parser and its cap."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self

import httpx

MAX_RETRY_AFTER = 300.0
"""Longest wait (seconds) a ``Retry-After`` or pause is honoured for; longer ones are capped."""


def http_client(
    base_url: str,
    *,
    timeout_s: float,
    connections: int,
    transport: httpx.AsyncBaseTransport | None,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """A pooled client for one system (no redirects followed: a redirect is an answer)."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"accept": "application/json", **(headers or {})},
        transport=transport,
    )


def json_body(response: httpx.Response) -> Any:
    """The body as JSON (non-integer numbers as ``Decimal``), or ``None`` if it is not JSON."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header value (delta-seconds or HTTP date), between 0 and
    :data:`MAX_RETRY_AFTER`; ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def response_retry_after(response: httpx.Response) -> float | None:
    """:func:`retry_after` of a response's ``Retry-After`` header."""
    return retry_after(response.headers.get("retry-after"))


def text_of(value: object, limit: int = 300) -> str:
    """A value from an answer as one short line of text."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[:limit] + "…"


class PooledClient:
    """Base of the API clients: an ``httpx.AsyncClient`` in ``_http``, closed on exit."""

    _http: httpx.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
