"""The CRM.COM V4 client: log in, reject a DRAFT invoice, show an invoice's life cycle state.

``POST authentication/token {username, password, organisation}`` gives a token valid two hours;
it is renewed before it expires (on the injected clock) and once more when CRM.COM calls it
invalid. Every answer is ``{"status": {"code", "message", "description"}, "data": {…}}`` and is
read through :data:`~pipeline.connectors.errors.CRM_CODES`: ``status.code`` decides, not only
the HTTP status. :meth:`CrmClient.reject_draft` is the write-back's one call per invoice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from pipeline import redact
from pipeline.connectors.errors import (
    CRM_CODES,
    CRM_UNKNOWN,
    Action,
    CrmRowError,
    Meaning,
    NotDraft,
    by_http_status,
    error_for,
)
from pipeline.connectors.http import send
from pipeline.runtime.clock import SYSTEM_CLOCK, Clock
from pipeline.runtime.http import (
    PooledClient,
    http_client,
    json_body,
    response_retry_after,
    text_of,
)
from pipeline.settings import SANDBOX_CRM, Settings, SettingsError

IdentifierField = Literal["reference_number", "id", "number"]
NOT_DRAFT = "INVALID_LIFE_CYCLE_STATE"


@dataclass(frozen=True, slots=True)
class CrmCredentials:
    """The CRM.COM login."""

    username: str
    password: str = field(repr=False)
    organisation: str


@dataclass(frozen=True, slots=True)
class CrmEndpoint:
    """Where CRM.COM is, and how long its tokens live."""

    base_url: str
    token_ttl_s: float = 7200.0
    renew_before_s: float = 300.0
    timeout_s: float = 30.0
    connections: int = 8


@dataclass(frozen=True, slots=True)
class CrmInvoice:
    """The invoice fields the write-back records."""

    id: str | None
    number: str | None
    reference_number: str | None
    life_cycle_state: str | None


def crm_credentials(settings: Settings, base_url: str) -> CrmCredentials:
    """The login from settings; on the sandbox (:meth:`~pipeline.settings.Settings.on_sandbox`),
    its own when unset. Raises :class:`~pipeline.settings.SettingsError` naming each missing
    variable."""
    password = settings.crm_password.get_secret_value() if settings.crm_password else None
    values = {
        "CRM_USERNAME": settings.crm_username,
        "CRM_PASSWORD": password,
        "CRM_ORGANISATION": settings.crm_organisation,
    }
    missing = [name for name, value in values.items() if not value]
    if missing and not settings.on_sandbox(base_url):
        raise SettingsError(f"{', '.join(missing)} must be set for CRM.COM at {base_url}")
    username, sandbox_password, organisation = SANDBOX_CRM
    credentials = CrmCredentials(
        username=settings.crm_username or username,
        password=password or sandbox_password,
        organisation=settings.crm_organisation or organisation,
    )
    redact.register(credentials.password)
    return credentials


class CrmClient(PooledClient):
    """Calls CRM.COM with a token it renews; ``async with CrmClient(endpoint, credentials):``."""

    def __init__(
        self,
        endpoint: CrmEndpoint,
        credentials: CrmCredentials,
        *,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._credentials = credentials
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._lock = asyncio.Lock()
        self.logins = 0
        self._http = http_client(
            endpoint.base_url,
            timeout_s=endpoint.timeout_s,
            connections=endpoint.connections,
            transport=transport,
        )

    async def login(self) -> None:
        """``POST authentication/token``: a new token, valid ``token_ttl_s`` from now."""
        started = self._clock.monotonic()
        body = {
            "username": self._credentials.username,
            "password": self._credentials.password,
            "organisation": self._credentials.organisation,
        }
        response = await send(self._http, "crm", "POST", "authentication/token", json=body)
        answer = json_body(response)
        meaning, detail, code = _reading(response, answer)
        token = _data(answer).get("token")
        if meaning.action is Action.OK and isinstance(token, str) and token:
            redact.register(token)
            self._token, self._expires_at = token, started + self.endpoint.token_ttl_s
            self._generation += 1
            self.logins += 1
            return
        if meaning.action in (Action.OK, Action.RENEW, Action.ROW):
            meaning = CRM_CODES["AUTHENTICATION_FAILED"]
        raise _error(meaning, f"login: {detail or 'no token in the answer'}", response, code)

    async def reject(
        self, identifier: tuple[IdentifierField, str], reason: tuple[str, str]
    ) -> CrmInvoice:
        """``POST invoices/reject`` with one identifier field and a rejection reason."""
        body = {
            "invoice_identifier": {identifier[0]: identifier[1]},
            "rejection_reason_identifier": {reason[0]: reason[1]},
        }
        return _invoice(await self._call("POST", "invoices/reject", body=body))

    async def show(self, identifier: tuple[IdentifierField, str]) -> CrmInvoice:
        """``GET invoices/show``: the invoice with its ``life_cycle_state``."""
        params = {"invoice_identifier": f"{identifier[0]}={identifier[1]}"}
        return _invoice(await self._call("GET", "invoices/show", params=params))

    async def reject_draft(
        self, identifier: tuple[IdentifierField, str], reason: tuple[str, str]
    ) -> CrmInvoice:
        """Reject a DRAFT invoice and read back its state. An invoice already REJECTED counts
        as done (a repeat); any other state raises :class:`NotDraft` (a failed row)."""
        try:
            await self.reject(identifier, reason)
        except CrmRowError as error:
            if error.error_code != NOT_DRAFT:
                raise
            current = await self.show(identifier)
            if current.life_cycle_state == "REJECTED":
                return current
            state = current.life_cycle_state or "not DRAFT"
            raise NotDraft(
                f"CRM.COM: invoice {identifier[0]} {identifier[1]!r} is {state}, not DRAFT, so "
                "it was not rejected (CRM.COM rejects DRAFT invoices only): handle it in CRM.COM",
                state=current.life_cycle_state,
                error_code=NOT_DRAFT,
            ) from None
        return await self.show(identifier)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            token, generation = await self._valid_token()
            if method == "GET":
                request: dict[str, Any] = {"params": {"token": token, **(params or {})}}
            else:
                request = {"json": {"token": token, **(body or {})}}
            response = await send(self._http, "crm", method, path, **request)
            answer = json_body(response)
            meaning, detail, code = _reading(response, answer)
            if meaning.action is Action.OK:
                return _data(answer)
            if meaning.action is Action.RENEW and attempt == 1:
                await self._renew(generation)
                continue
            if meaning.action is Action.RENEW:
                meaning = Meaning(Action.FATAL, meaning.title, "a fresh login was refused too")
            raise _error(meaning, detail, response, code)
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _valid_token(self) -> tuple[str, int]:
        """The token, logging in first when there is none or it is about to expire."""
        renew_at = self._expires_at - self.endpoint.renew_before_s
        if self._token is None or self._clock.monotonic() >= renew_at:
            await self._renew(self._generation)
        assert self._token is not None
        return self._token, self._generation

    async def _renew(self, seen: int) -> None:
        """Log in once for every caller that saw generation ``seen`` expire or fail."""
        async with self._lock:
            if self._generation == seen:
                await self.login()


def _data(answer: object) -> dict[str, Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    return data if isinstance(data, dict) else {}


def _invoice(data: dict[str, Any]) -> CrmInvoice:
    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value)

    return CrmInvoice(
        text("id"), text("number"), text("reference_number"), text("life_cycle_state")
    )


def _reading(response: httpx.Response, answer: object) -> tuple[Meaning, str, str | None]:
    """(meaning, detail, code): ``status.code`` first, the HTTP status when there is none."""
    found = answer.get("status") if isinstance(answer, dict) else None
    status: dict[str, Any] = found if isinstance(found, dict) else {}
    code = status.get("code")
    if not isinstance(code, str) or not code:
        if response.is_success:
            meaning = Meaning(
                Action.FATAL,
                "Answer without status.code",
                "is crm.base_url (or CRM_BASE_URL) the CRM.COM Web API root?",
            )
            return meaning, "", None
        return by_http_status(response.status_code), "", None
    detail = " ".join(
        text_of(status.get(key)) for key in ("message", "description") if status.get(key)
    )
    if code == "OK" and not response.is_success:
        return by_http_status(response.status_code), detail, code
    if response.status_code == 429 or response.status_code >= 500:
        return by_http_status(response.status_code), detail, code
    return CRM_CODES.get(code, CRM_UNKNOWN), detail, code


def _error(meaning: Meaning, detail: str, response: httpx.Response, code: str | None) -> Exception:
    return error_for(
        "crm",
        meaning,
        detail,
        status=response.status_code,
        code=code,
        retry_after=response_retry_after(response),
    )
