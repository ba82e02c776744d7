"""The HTTP plumbing both connectors share: one pooled httpx client, transport errors typed,
JSON bodies read with exact decimals, and ``Retry-After``."""

from __future__ import annotations

import json
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import httpx

from pipeline.connectors.errors import System, transport_error

MAX_RETRY_AFTER = 300.0


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


async def send(
    http: httpx.AsyncClient, system: System, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request; no HTTP answer becomes a retryable ``ConnectorTransport``."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TransportError as error:
        raise transport_error(system, error) from None


def json_body(response: httpx.Response) -> Any:
    """The body as JSON (non-integer numbers as ``Decimal``), or ``None`` if it is not JSON."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form), capped at five minutes."""
    value = response.headers.get("retry-after", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None


def text_of(value: object, limit: int = 300) -> str:
    """A value from an answer as one short line of text."""
    text = " ".join(str(value).split()) if value is not None else ""
    return text if len(text) <= limit else text[:limit] + "…"


class PooledClient:
    """Base of the connector clients: an ``httpx.AsyncClient`` in ``_http``, closed on exit."""

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
