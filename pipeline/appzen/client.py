"""The AppZen HTTP client: one pooled async httpx client per run, one method per endpoint."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Literal, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from pipeline.appzen.errors import (
    AppZenError,
    Operation,
    TransportError,
    UnexpectedResponse,
    error_for_status,
)
from pipeline.appzen.models import (
    CreateResponse,
    ErrorBody,
    Invoice,
    InvoiceDetails,
    StatusSyncRequest,
    payload_json,
)
from pipeline.settings import Settings

log = logging.getLogger(__name__)

CORRELATION_HEADER = "x-correlation-id"
MAX_RETRY_AFTER = 300.0
_Body = TypeVar("_Body", CreateResponse, InvoiceDetails)


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
        self._http = httpx.AsyncClient(
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
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            verify=settings.appzen_verify_tls,
            transport=transport,
        )

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
        """Close the connection pool."""
        await self._http.aclose()

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
        log.warning("reading invoice %s through AppZen's deprecated get-details endpoint", uuid)
        response = await self._send("by_uuid", "GET", f"invoice/{quote(uuid, safe='')}")
        return _parse_body(response, InvoiceDetails)

    async def _send(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(method, path, content=content, headers=headers)
        except httpx.TimeoutException as error:
            kind = type(error).__name__
            raise TransportError(f"AppZen did not answer in time ({kind})") from None
        except httpx.TransportError as error:
            kind = type(error).__name__
            raise TransportError(f"no answer from AppZen ({kind}: {error})") from None
        if response.is_success:
            return response
        raise _error_from(operation, response)


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


def _error_from(operation: Operation, response: httpx.Response) -> AppZenError:
    body = _error_body(response)
    return error_for_status(
        operation,
        response.status_code,
        detail=body.detail,
        error_code=body.error_code,
        correlation_id=response.headers.get(CORRELATION_HEADER),
        retry_after=_retry_after(response.headers.get("retry-after")),
    )


def _error_body(response: httpx.Response) -> ErrorBody:
    try:
        return ErrorBody.model_validate_json(response.content)
    except ValidationError:
        text = response.text.strip()
        return ErrorBody(message=text[:500] or response.reason_phrase)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), capped at 5 minutes."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = (moment - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


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
