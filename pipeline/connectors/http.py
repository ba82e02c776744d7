"""Sending one request to an ERP-side system: no HTTP answer becomes that system's typed,
retryable transport error."""

from __future__ import annotations

from typing import Any

import httpx

from pipeline.connectors.errors import System, transport_error


async def send(
    http: httpx.AsyncClient, system: System, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """One request; no HTTP answer becomes that system's retryable transport error."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TransportError as error:
        raise transport_error(system, error) from None
