"""The sandbox's ASGI app: AppZen's invoice routes with quota, latency and faults, and admin routes.

Every request not under ``/_sandbox/`` goes through the gate first, in this order: the quota (429
with ``Retry-After``), the latency, a dropped connection (``drop_rate``), a 500 without processing
(``fail_rate``). Then the route: auth (401/403), headers, body, schema; after storing a create or
a status-sync, ``commit_then_drop_rate`` and ``commit_then_fail_rate`` may lose the answer. Every
response carries a fresh ``x-correlation-id``; every error has AppZen's error body.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from pipeline.appzen.models import Invoice, StatusSyncRequest
from pipeline.devkit.sandbox.audit import AuditRoutes
from pipeline.devkit.sandbox.crm import CRM_PREFIX, CrmRoutes
from pipeline.devkit.sandbox.knobs import SandboxConfigError, retry_after_header
from pipeline.devkit.sandbox.merchant import MERCHANT_PREFIX, MerchantRoutes
from pipeline.devkit.sandbox.state import SandboxState, StoredInvoice, UnknownInvoiceError
from pipeline.devkit.sandbox.wire import (
    BodyError,
    PathError,
    describe_validation,
    details_view,
    dumps_exact,
    error_body,
    loads_exact,
)

PREFIX = "/dictionary-data-services"
ADMIN_PREFIX = "/_sandbox"
ABORT_KEY = "appzen_sandbox.abort"
"""Key in ``scope["state"]`` of a callable that closes the connection without an answer; the
:class:`~pipeline.devkit.sandbox.server.SandboxServer`'s protocol puts it there."""
UNGATED = (ADMIN_PREFIX + "/", MERCHANT_PREFIX + "/", CRM_PREFIX + "/")
CORRELATION_HEADER = b"x-correlation-id"
MAX_BODY_BYTES = 5 * 1024 * 1024
JSON_TYPE = "application/json"
CLIENT_CLOSED = 499


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    """An AppZen-shaped error answer."""
    return Response(error_body(status, detail), status, headers, media_type=JSON_TYPE)


def json_response(body: bytes, status: int = 200) -> Response:
    """A JSON answer from already-serialized bytes."""
    return Response(body, status, media_type=JSON_TYPE)


class DropResponse(Response):
    """Not a response: closes the connection so the client sees a transport error."""

    def __init__(self, state: SandboxState) -> None:
        super().__init__()
        self.sandbox = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        abort = scope.get("state", {}).get(ABORT_KEY)
        if abort is None:
            detail = "drop_rate needs the SandboxServer's HTTP protocol; this server has none"
            await error_response(500, detail)(scope, receive, send)
            return
        self.sandbox.count_drop()
        abort()
        while (await receive())["type"] != "http.disconnect":
            continue


class MutateRequest(BaseModel):
    """Body of ``POST /_sandbox/invoices/{invoice_id}/mutate``."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)
    value: Any = None
    delete: bool = False


class SandboxApp:
    """The ASGI callable: stamps every response, gates AppZen requests, then routes."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        appzen = AppZenRoutes(state)
        routes = [
            *appzen.routes(),
            *AuditRoutes(state, appzen.authenticate).routes(),
            *MerchantRoutes(state.merchant).routes(),
            *CrmRoutes(state.crm).routes(),
            *AdminRoutes(state).routes(),
        ]
        self.router = Starlette(
            routes=routes,
            exception_handlers={
                HTTPException: self._http_error,
                ClientDisconnect: _client_gone,
                Exception: _server_error,
            },
        )

    def _http_error(self, request: Request, exc: Exception) -> Response:
        echo = self.state.knobs.echo_credentials and not request.url.path.startswith(UNGATED)
        return _http_error(request, exc, _echo(request.headers) if echo else "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        # Admin and the ERP-side systems (merchant, CRM.COM) skip AppZen's gate and counts.
        admin = scope["path"].startswith(UNGATED)
        stamped = _stamping(send, None if admin else self.state)
        if admin:
            await self.router(scope, receive, stamped)
        else:
            await self._gate(scope, receive, stamped)

    async def _gate(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        wait = state.admit()
        delay = state.delay_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        knobs = state.knobs
        response: Response | None = None
        if wait is not None:
            seconds = retry_after_header(wait)
            detail = f"Rate limit exceeded: the quota is used up; retry in {seconds} s"
            response = error_response(429, detail, {"retry-after": seconds})
        elif state.roll(knobs.drop_rate):
            response = DropResponse(state)
        elif state.roll(knobs.fail_rate):
            response = error_response(500, "Internal server error (sandbox fail_rate)")
        if response is None:
            await self.router(scope, receive, send)
        else:
            await response(scope, receive, send)


def _stamping(send: Send, state: SandboxState | None) -> Send:
    """``send`` that adds ``x-correlation-id`` and, for AppZen routes, counts the status."""

    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (CORRELATION_HEADER, _correlation_id())]
            message = {**message, "headers": headers}
            if state is not None:
                state.count_response(message["status"])
        await send(message)

    return stamped


def _correlation_id() -> bytes:
    return str(uuid.uuid4()).encode()


class AppZenRoutes:
    """``POST /invoice``, ``GET /invoice/{uuid}``, ``POST /invoice/{uuid}/status-sync``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The three routes under :data:`PREFIX`."""
        return [
            Route(f"{PREFIX}/invoice", self.create, methods=["POST"]),
            Route(f"{PREFIX}/invoice/{{uuid}}", self.get_details, methods=["GET"]),
            Route(f"{PREFIX}/invoice/{{uuid}}/status-sync", self.status_sync, methods=["POST"]),
        ]

    async def create(self, request: Request) -> Response:
        """Create or update, keyed by ``invoice_id``: 201 CREATED or 200 UPDATED."""
        self._authenticate(request)
        historical = _historical(request.headers.get("historical"))
        payload = await _read_json(request)
        try:
            invoice = Invoice.model_validate(payload)
        except ValidationError as error:
            raise HTTPException(400, describe_validation(error)) from None
        if invoice.invoice_id in self.state.knobs.failing_invoices:
            return error_response(500, "Internal server error (sandbox failing_invoices)")
        if invoice.supplier_id in self.state.knobs.unknown_suppliers:
            raise HTTPException(
                400, f"supplier_id: {invoice.supplier_id!r} is not a supplier of this customer"
            )
        record = self.state.upsert(invoice.invoice_id, payload, historical=historical)
        created = record.versions == 1
        body = {"uuid": record.uuid, "status": "CREATED" if created else "UPDATED"}
        return self._after_commit(json_response(json.dumps(body).encode(), 201 if created else 200))

    async def get_details(self, request: Request) -> Response:
        """The stored invoice in the get-details shape (deprecated endpoint)."""
        self._authenticate(request)
        record = self._by_uuid(request)
        return json_response(dumps_exact(details_view(record.payload)))

    async def status_sync(self, request: Request) -> Response:
        """Record the ERP-side state of an invoice; 200 with an empty body."""
        self._authenticate(request)
        record = self._by_uuid(request)
        body = await _read_json(request)
        try:
            sync = StatusSyncRequest.model_validate(body)
        except ValidationError as error:
            raise HTTPException(400, describe_validation(error)) from None
        if sync.invoice_id in self.state.knobs.failing_invoices:
            return error_response(500, "Internal server error (sandbox failing_invoices)")
        if (
            sync.invoice_status is not None
            and sync.invoice_status in self.state.knobs.refused_statuses
        ):
            raise HTTPException(
                400, f"invoice_status: {sync.invoice_status[:64]!r} is not a status AppZen accepts"
            )
        self.state.record_push(record, body, sync.model_dump(exclude_unset=True))
        return self._after_commit(Response(status_code=200))

    def _after_commit(self, response: Response) -> Response:
        knobs = self.state.knobs
        if self.state.roll(knobs.commit_then_drop_rate):
            return DropResponse(self.state)
        if self.state.roll(knobs.commit_then_fail_rate):
            return error_response(500, "Internal server error (sandbox commit_then_fail_rate)")
        return response

    def _by_uuid(self, request: Request) -> StoredInvoice:
        invoice_uuid = request.path_params["uuid"]
        record = self.state.invoice_by_uuid(invoice_uuid)
        if record is None:
            raise HTTPException(404, f"No invoice with uuid {invoice_uuid[:64]!r}")
        return record

    def authenticate(self, request: Request) -> None:
        """AppZen's auth for other AppZen routes (the audit's search and audit-results)."""
        self._authenticate(request)

    def _authenticate(self, request: Request) -> None:
        """401 for a missing or wrong key; 403 for a valid key pair used for another customer."""
        expected = self.state.credentials
        headers = request.headers
        if not _same(headers.get("x-api-key"), expected.api_key):
            raise HTTPException(401, "Unable to authenticate credentials (check x-api-key)")
        if not _same(headers.get("customer-key"), expected.customer_key):
            raise HTTPException(401, "Unable to authenticate credentials (check customer-key)")
        customer_id = headers.get("customer-id")
        if not customer_id:
            raise HTTPException(401, "Unable to authenticate credentials (customer-id missing)")
        if customer_id != expected.customer_id:
            raise HTTPException(
                403, "This x-api-key has no permission for the customer-id sent (check customer-id)"
            )


class AdminRoutes:
    """``/_sandbox/state``, ``configure``, ``reset``, ``invoices/{id}/mutate`` and ``/forget``."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The admin routes under :data:`ADMIN_PREFIX` (no AppZen auth)."""
        return [
            Route(f"{ADMIN_PREFIX}/state", self.read_state, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/configure", self.configure, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/reset", self.reset, methods=["POST"]),
            Route(
                f"{ADMIN_PREFIX}/invoices/{{invoice_id:path}}/mutate", self.mutate, methods=["POST"]
            ),
            Route(f"{ADMIN_PREFIX}/invoices/{{key:path}}/forget", self.forget, methods=["POST"]),
        ]

    async def read_state(self, request: Request) -> Response:
        """Everything the sandbox holds and counted."""
        return json_response(dumps_exact(self.state.snapshot()))

    async def configure(self, request: Request) -> Response:
        """Change some knobs; answers the knobs now in force."""
        changes = await _read_json(request)
        if not isinstance(changes, dict):
            raise HTTPException(400, 'send a JSON object of knobs, such as {"rate": 5}')
        try:
            knobs = self.state.configure(**changes)
        except SandboxConfigError as error:
            raise HTTPException(400, str(error)) from None
        return json_response(knobs.model_dump_json().encode())

    async def reset(self, request: Request) -> Response:
        """Forget every invoice, push and count; restore the knobs given at construction."""
        self.state.reset()
        return json_response(json.dumps({"status": "reset"}).encode())

    async def mutate(self, request: Request) -> Response:
        """Change one field of a stored invoice (drift for reconciliation tests)."""
        try:
            change = MutateRequest.model_validate(await _read_json(request))
        except ValidationError as error:
            raise HTTPException(400, describe_validation(error)) from None
        invoice_id = request.path_params["invoice_id"]
        try:
            record = self.state.mutate(invoice_id, change.path, change.value, delete=change.delete)
        except UnknownInvoiceError as error:
            raise HTTPException(404, str(error)) from None
        except PathError as error:
            raise HTTPException(400, str(error)) from None
        return json_response(dumps_exact(record.to_json()))

    async def forget(self, request: Request) -> Response:
        """Drop a stored invoice (by ``invoice_id`` or uuid): its uuid answers 404 from now on."""
        try:
            record = self.state.forget(request.path_params["key"])
        except UnknownInvoiceError as error:
            raise HTTPException(404, str(error)) from None
        return json_response(dumps_exact({"invoice_id": record.invoice_id, **record.to_json()}))


def _same(sent: str | None, expected: str) -> bool:
    return sent is not None and secrets.compare_digest(sent.encode(), expected.encode())


def _historical(value: str | None) -> bool:
    if value is None:
        raise HTTPException(400, "header 'historical' is required: send historical: true or false")
    flag = value.strip().lower()
    if flag not in ("true", "false"):
        raise HTTPException(400, f"header 'historical' must be true or false, not {value[:40]!r}")
    return flag == "true"


async def _read_json(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body over {MAX_BODY_BYTES} bytes: send one smaller invoice")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise HTTPException(413, f"body over {MAX_BODY_BYTES} bytes: send one smaller invoice")
        chunks.append(chunk)
    try:
        return loads_exact(b"".join(chunks))
    except BodyError as error:
        raise HTTPException(400, str(error)) from None


def _http_error(request: Request, exc: Exception, tail: str = "") -> Response:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    detail = exc.detail
    where = f"{request.method} {request.url.path[:200]}"
    if status == 404 and detail == "Not Found":
        detail = f"The resource you specified cannot be found: {where} (AppZen routes: {PREFIX}/…)"
    elif status == 405:
        detail = f"Method Not Allowed: {where}"
    return error_response(status, detail + tail, exc.headers)


def _echo(headers: Mapping[str, str]) -> str:
    """The ``echo_credentials`` knob's tail: the request's credentials, named and bare."""
    key, customer, customer_key = (
        headers.get(name, "") for name in ("x-api-key", "customer-id", "customer-key")
    )
    return (
        f" [request headers x-api-key: {key}, customer-id: {customer}, "
        f"customer-key: {customer_key}] [caller {key}/{customer_key}]"
    )


def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its body was read (its read timeout, or it died): nothing went
    wrong here, so no traceback is logged. Counted as 499, nginx's "client closed request"."""
    return Response(status_code=CLIENT_CLOSED)


def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, f"Internal error in the sandbox ({type(exc).__name__})")
