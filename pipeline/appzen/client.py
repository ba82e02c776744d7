"""The AppZen HTTP client: one pooled async httpx client per run, one method per endpoint."""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from pipeline.appzen.errors import (
    AppZenError,
    CertificateError,
    Operation,
    TransportError,
    UnexpectedResponse,
    error_for_status,
)
from pipeline.appzen.models import (
    AuditResultsResponse,
    AuditSummary,
    CreateResponse,
    ErrorBody,
    Invoice,
    InvoiceDetails,
    SearchHit,
    SearchRequest,
    StatusSyncRequest,
    payload_json,
)
from pipeline.runtime.http import response_retry_after
from pipeline.settings import Settings

log = logging.getLogger(__name__)

CORRELATION_HEADER = "x-correlation-id"
_Body = TypeVar("_Body", CreateResponse, InvoiceDetails, AuditResultsResponse)
_SEARCH_HITS: TypeAdapter[list[SearchHit]] = TypeAdapter(list[SearchHit])


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """AppZen stored the invoice: its uuid, CREATED or UPDATED, and the answer's metadata."""

    uuid: str
    status: Literal["CREATED", "UPDATED"]
    http_status: int
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """A success without a body (status-sync)."""

    http_status: int
    correlation_id: str | None


class AppZenClient:
    """Calls AppZen with the three auth headers on every request.

    Use as ``async with AppZenClient(settings) as client:``; pass ``transport=`` to talk to an
    in-memory app or an ``httpx.MockTransport`` in unit tests.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int | None = None,
    ) -> None:
        api_key, customer_id, customer_key = settings.credentials()
        connections = max_connections or settings.appzen_max_concurrency
        if not settings.appzen_verify_tls:
            log.warning(
                "TLS certificate verification is OFF for %s (APPZEN_VERIFY_TLS=false): "
                "use this only against a test endpoint",
                settings.appzen_base_url,
            )
        sizes = [connections] if transport is not None else _pool_sizes(connections)
        # One TLS context for every pool: building one loads the CA bundle (~60 ms of CPU each,
        # eight of them for 32 connections), even for a plain-HTTP sandbox.
        tls = httpx.create_ssl_context(verify=settings.appzen_verify_tls)
        self._pools = [
            httpx.AsyncClient(
                base_url=settings.appzen_base_url + "/",
                headers={
                    "x-api-key": api_key,
                    "customer-id": customer_id,
                    "customer-key": customer_key,
                    "accept": "application/json",
                },
                timeout=httpx.Timeout(
                    settings.appzen_read_timeout, connect=settings.appzen_connect_timeout
                ),
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                verify=tls,
                transport=transport,
            )
            for size in sizes
        ]
        self._busy = [0] * len(self._pools)
        self._http = self._pools[0]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pools."""
        for pool in self._pools:
            await pool.aclose()

    async def create_or_update(
        self, invoice: Invoice | bytes, *, historical: bool
    ) -> Acknowledgement:
        """``POST /invoice``: 201 CREATED for a new ``invoice_id``, 200 UPDATED for a known one.

        ``invoice`` may be the model or its :func:`payload_json` bytes (sent as they are).
        """
        body = invoice if isinstance(invoice, bytes) else payload_json(invoice)
        response = await self._send(
            "create",
            "POST",
            "invoice",
            content=body,
            headers={
                "content-type": "application/json",
                "historical": "true" if historical else "false",
            },
        )
        if response.status_code not in (200, 201):
            raise _unexpected(response, "create answered with a success code it never documents")
        parsed = _parse_body(response, CreateResponse)
        return Acknowledgement(
            uuid=parsed.uuid,
            status=parsed.status,
            http_status=response.status_code,
            correlation_id=response.headers.get(CORRELATION_HEADER),
        )

    async def status_sync(self, uuid: str, body: StatusSyncRequest) -> Reply:
        """``POST /invoice/{uuid}/status-sync``: tell AppZen the ERP-side state of an invoice."""
        response = await self._send(
            "by_uuid",
            "POST",
            f"invoice/{quote(uuid, safe='')}/status-sync",
            content=payload_json(body),
            headers={"content-type": "application/json"},
        )
        return Reply(response.status_code, response.headers.get(CORRELATION_HEADER))

    async def get_invoice(self, uuid: str) -> InvoiceDetails:
        """``GET /invoice/{uuid}``: **deprecated by AppZen**; only opt-in reconciliation uses it."""
        log.debug("reading invoice %s through AppZen's deprecated get-details endpoint", uuid)
        response = await self._send("by_uuid", "GET", f"invoice/{quote(uuid, safe='')}")
        return _parse_body(response, InvoiceDetails)

    async def search_invoices(self, request: SearchRequest) -> list[SearchHit]:
        """``POST /invoice/search``: the invoices whose last AppZen update falls in the window."""
        response = await self._send(
            "search",
            "POST",
            "invoice/search",
            content=payload_json(request),
            headers={"content-type": "application/json"},
        )
        try:
            return _SEARCH_HITS.validate_json(response.content)
        except ValidationError as error:
            raise _unexpected(response, f"malformed search answer ({error})") from None

    async def audit_results(self, uuid: str) -> AuditSummary:
        """``GET /invoice/{uuid}/audit-results``: header risk, Approved/Rejected, per-rule risks."""
        response = await self._send(
            "by_uuid", "GET", f"invoice/{quote(uuid, safe='')}/audit-results"
        )
        return _parse_body(response, AuditResultsResponse).audit_results

    async def _pooled(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str] | None
    ) -> httpx.Response:
        """One request on the pool with the fewest requests in flight."""
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            return await self._pools[index].request(method, path, content=content, headers=headers)
        finally:
            busy[index] -= 1

    async def _send(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            response = await self._pooled(method, path, content, headers)
        except httpx.TimeoutException as error:
            kind = type(error).__name__
            raise TransportError(f"AppZen did not answer in time ({kind})") from None
        except httpx.TransportError as error:
            if _unverified_certificate(error):
                raise CertificateError(
                    f"cannot verify the TLS certificate of {self._http.base_url.host} ({error}): "
                    "fix the server's certificate chain or this machine's CA store; "
                    "APPZEN_VERIFY_TLS=false is for a test endpoint only"
                ) from None
            kind = type(error).__name__
            raise TransportError(f"no answer from AppZen ({kind}: {error})") from None
        if log.isEnabledFor(logging.DEBUG):  # -vv: one line per request, never a header or body
            log.debug(
                "AppZen %s /%s: HTTP %s in %.0f ms (x-correlation-id %s)",
                method,
                path,
                response.status_code,
                (time.monotonic() - started) * 1000,
                response.headers.get(CORRELATION_HEADER, "none"),
            )
        if response.is_success:
            return response
        raise _error_from(operation, response)


POOL_CONNECTIONS = 4
"""Connections per httpx pool. httpcore's pool does work in proportion to its connections on
every request (it polls each idle one), so a client's connections are spread over pools of at
most 4: client CPU per request ~0.8 ms instead of ~1.4 ms with 16 connections in one pool and
~2.8 ms with 32 (measured against the sandbox; see benchmarks/README.md)."""


def _pool_sizes(connections: int) -> list[int]:
    """``connections`` split into pools of at most :data:`POOL_CONNECTIONS` (10 → 4, 3, 3)."""
    pools = -(-connections // POOL_CONNECTIONS)
    share, extra = divmod(connections, pools)
    return [share + 1 if n < extra else share for n in range(pools)]


@contextlib.asynccontextmanager
async def client_session(
    settings: Settings, client: AppZenClient | None = None
) -> AsyncIterator[AppZenClient]:
    """``client`` if the caller passed one (it stays open), else a new one closed on exit."""
    if client is not None:
        yield client
        return
    async with AppZenClient(settings) as fresh:
        yield fresh


def _unverified_certificate(error: BaseException) -> bool:
    """True when a TLS certificate verification failure is behind ``error``."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _error_from(operation: Operation, response: httpx.Response) -> AppZenError:
    body = _error_body(response)
    return error_for_status(
        operation,
        response.status_code,
        detail=body.detail,
        error_code=body.error_code,
        correlation_id=response.headers.get(CORRELATION_HEADER),
        retry_after=response_retry_after(response),
    )


def _error_body(response: httpx.Response) -> ErrorBody:
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        text = response.text.strip()
        return ErrorBody(message=text[:500] or response.reason_phrase)


def _parse_body(response: httpx.Response, model: type[_Body]) -> _Body:
    try:
        return model.model_validate(json.loads(response.content, parse_float=Decimal))
    except (ValueError, ValidationError) as error:
        raise _unexpected(response, f"malformed {model.__name__} body ({error})") from None


def _unexpected(response: httpx.Response, message: str) -> UnexpectedResponse:
    return UnexpectedResponse(
        message,
        status=response.status_code,
        correlation_id=response.headers.get(CORRELATION_HEADER),
    )
