"""The merchant platform (Shopwave / MerchantStack) client: ``GET /invoice`` to read supplier
invoices, ``POST /invoice`` to update one, OAuth2 bearer token refreshed on message 908.

Every answer is read through :data:`~pipeline.connectors.errors.MERCHANT_MESSAGES`: the message
IDs in ``api.message.error`` decide (even on a 2xx: a 201 may carry an error), then the HTTP
status. 908 (and a bare 401) refresh the token once, shared by concurrent calls, and repeat the
call; a second 908 is fatal. Tokens are registered with :mod:`pipeline.redact` as they arrive.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline import redact
from pipeline.connectors.errors import (
    MERCHANT_MESSAGES,
    Action,
    Meaning,
    by_http_status,
    error_for,
)
from pipeline.connectors.http import send
from pipeline.runtime.http import (
    PooledClient,
    http_client,
    json_body,
    response_retry_after,
    text_of,
)
from pipeline.settings import SANDBOX_MERCHANT, Settings, SettingsError

Record = dict[str, Any]
NOTE_TAG = re.compile(r"\s*\[AppZen [^\[\]]*\]\s*$")


@dataclass(frozen=True, slots=True)
class MerchantCredentials:
    """The OAuth2 client and tokens (``access_token`` may be unknown: refreshed first)."""

    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class MerchantEndpoint:
    """Where the platform is and how to talk to it."""

    base_url: str
    token_url: str | None = None
    accept_version: str = "2"
    timeout_s: float = 30.0
    connections: int = 8

    @property
    def oauth_url(self) -> str:
        """The token endpoint: ``token_url`` or ``<base_url>/oauth/token``."""
        return self.token_url or self.base_url.rstrip("/") + "/oauth/token"


@dataclass(frozen=True, slots=True)
class MerchantReply:
    """A successful answer: HTTP status and the success message IDs (206 …)."""

    http_status: int
    messages: tuple[int, ...]


def merchant_credentials(settings: Settings, base_url: str) -> MerchantCredentials:
    """The credentials from settings; on the sandbox
    (:meth:`~pipeline.settings.Settings.on_sandbox`), its own when unset. Raises
    :class:`~pipeline.settings.SettingsError` naming each missing variable."""
    client_id, client_secret, refresh = SANDBOX_MERCHANT
    values = {
        "MERCHANT_CLIENT_ID": settings.merchant_client_id,
        "MERCHANT_CLIENT_SECRET": _secret(settings.merchant_client_secret),
        "MERCHANT_REFRESH_TOKEN": _secret(settings.merchant_refresh_token),
    }
    missing = [name for name, value in values.items() if not value]
    if missing and not settings.on_sandbox(base_url):
        raise SettingsError(f"{', '.join(missing)} must be set for the merchant API {base_url}")
    credentials = MerchantCredentials(
        client_id=values["MERCHANT_CLIENT_ID"] or client_id,
        client_secret=values["MERCHANT_CLIENT_SECRET"] or client_secret,
        refresh_token=values["MERCHANT_REFRESH_TOKEN"] or refresh,
        access_token=_secret(settings.merchant_access_token),
    )
    redact.register(credentials.client_secret, credentials.refresh_token, credentials.access_token)
    return credentials


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value()) or None


def with_appzen_note(note: object, uuid: str, state: str, reason: str | None = None) -> str:
    """``note`` with its ``[AppZen <uuid> <STATE>: reason]`` tag set (an older tag replaced)."""
    base = NOTE_TAG.sub("", "" if note is None else str(note))
    detail = f": {text_of(reason, 120)}" if reason else ""
    tag = f"[AppZen {uuid} {state}{detail}]".replace("\n", " ")
    tag = "[" + tag[1:-1].replace("[", "(").replace("]", ")") + "]"
    return f"{base} {tag}" if base.strip() else tag


def without_appzen_note(invoice: Record) -> Record:
    """The invoice with the write-back's ``[AppZen …]`` tag cut from its note (so reading the
    platform again does not see the pipeline's own write-back as a change to send)."""
    note = invoice.get("note")
    if not isinstance(note, str) or not NOTE_TAG.search(note):
        return invoice
    return {**invoice, "note": NOTE_TAG.sub("", note)}


def invoices_of(body: object) -> list[Record]:
    """The invoices of an answer (a list, or an object keyed by id), items as a list."""
    found = body.get("invoices") if isinstance(body, dict) else None
    values = list(found.values()) if isinstance(found, dict) else found or []
    invoices = []
    for value in values:
        if isinstance(value, dict):
            items = value.get("invoiceItems")
            listed = list(items.values()) if isinstance(items, dict) else items
            invoices.append(value if listed is items else {**value, "invoiceItems": listed})
    return invoices


class MerchantClient(PooledClient):
    """Calls the merchant platform; ``async with MerchantClient(endpoint, credentials):``."""

    def __init__(
        self,
        endpoint: MerchantEndpoint,
        credentials: MerchantCredentials,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._credentials = credentials
        self._access = credentials.access_token
        self._refresh = credentials.refresh_token
        self._generation = 0
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self._http = http_client(
            endpoint.base_url,
            timeout_s=endpoint.timeout_s,
            connections=endpoint.connections,
            transport=transport,
            headers={"x-accept-version": endpoint.accept_version},
        )

    async def list_invoices(
        self, store_ids: Sequence[int] = (), invoice_ids: Sequence[int] = ()
    ) -> list[Record]:
        """``GET /invoice`` filtered by the ``storeIds`` / ``invoiceId`` headers (no paging)."""
        headers = {}
        if store_ids:
            headers["storeIds"] = ",".join(str(int(i)) for i in store_ids)
        if invoice_ids:
            headers["invoiceId"] = ",".join(str(int(i)) for i in invoice_ids)
        body, _ = await self._call("GET", "invoice", headers=headers)
        return invoices_of(body)

    async def update_note(self, invoice_id: int, note: str) -> MerchantReply:
        """``POST /invoice`` updating invoice ``invoice_id``'s note (update by id)."""
        payload = {"invoices": [{"id": int(invoice_id), "note": note}]}
        _, reply = await self._call("POST", "invoice", json=payload)
        return reply

    async def refresh(self) -> None:
        """Trade the refresh token for a new access token (and refresh token, if rotated)."""
        response = await send(
            self._http,
            "merchant",
            "POST",
            self.endpoint.oauth_url,
            json={
                "grant_type": "refresh_token",
                "refresh_token": self._refresh,
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
            },
        )
        body = json_body(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not response.is_success or not isinstance(token, str) or not token:
            meaning, detail, code = _reading(response, body)
            if meaning.action in (Action.OK, Action.RENEW, Action.ROW):
                meaning = Meaning(Action.FATAL, "Token refresh refused", _REFRESH_HINT)
            raise _error(meaning, f"token refresh: {detail}", response, code)
        rotated = body.get("refresh_token") if isinstance(body, dict) else None
        redact.register(token, rotated if isinstance(rotated, str) else None)
        self._access = token
        self._refresh = rotated if isinstance(rotated, str) and rotated else self._refresh
        self._generation += 1
        self.refreshes += 1

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[object, MerchantReply]:
        for attempt in (1, 2):
            generation = await self._token()
            response = await send(
                self._http, "merchant", method, path, headers=self._auth(kwargs), **_rest(kwargs)
            )
            body = json_body(response)
            meaning, detail, code = _reading(response, body)
            if meaning.action is Action.OK:
                return body, MerchantReply(response.status_code, _ids(body, "success"))
            if meaning.action is Action.RENEW and attempt == 1:
                await self._renew(generation)
                continue
            if meaning.action is Action.RENEW:
                detail = f"{detail} again right after a token refresh"
                meaning = Meaning(Action.FATAL, meaning.title, _REFRESH_HINT)
            raise _error(meaning, detail, response, code)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _auth(self, kwargs: dict[str, Any]) -> dict[str, str]:
        return {**kwargs.get("headers", {}), "authorization": f"Bearer {self._access}"}

    async def _token(self) -> int:
        """The generation of the access token to use (refreshed first if there is none)."""
        if self._access is None:
            await self._renew(self._generation)
        return self._generation

    async def _renew(self, seen: int) -> None:
        """Refresh once for everyone who saw generation ``seen`` fail."""
        async with self._lock:
            if self._generation == seen:
                await self.refresh()


_REFRESH_HINT = "set a new MERCHANT_REFRESH_TOKEN (and MERCHANT_CLIENT_ID / _SECRET)"


def _rest(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if key != "headers"}


def _ids(body: object, kind: str) -> tuple[int, ...]:
    """The message IDs of ``api.message.<kind>`` (keys or the entries' ``id``)."""
    api = body.get("api") if isinstance(body, dict) else None
    message = api.get("message") if isinstance(api, dict) else None
    entries = message.get(kind) if isinstance(message, dict) else None
    found: list[int] = []
    if isinstance(entries, dict):
        for key, entry in entries.items():
            raw = entry.get("id", key) if isinstance(entry, dict) else key
            if str(raw).isdigit():
                found.append(int(str(raw)))
    return tuple(found)


def _reading(response: httpx.Response, body: object) -> tuple[Meaning, str, str | None]:
    """(meaning, detail, code) of an answer: its first known error ID, else the HTTP status."""
    errors = _ids(body, "error")
    for message_id in errors:
        meaning = MERCHANT_MESSAGES.get(message_id)
        if meaning is not None and meaning.action is not Action.OK:
            return meaning, _detail(body, message_id), str(message_id)
    if response.is_success and not errors:
        return MERCHANT_MESSAGES[206], "", None
    code = str(errors[0]) if errors else None
    meaning = by_http_status(response.status_code)
    if response.is_success:  # an error ID this table does not know, on a 2xx
        meaning = Meaning(Action.ROW, f"message {code}", "see the merchant platform's message")
    return meaning, _detail(body, errors[0] if errors else None), code


def _detail(body: object, message_id: int | None) -> str:
    api = body.get("api", {}) if isinstance(body, dict) else {}
    entries = api.get("message", {}).get("error", {}) if isinstance(api, dict) else {}
    entry = entries.get(str(message_id)) if isinstance(entries, dict) else None
    if isinstance(entry, dict):
        return text_of(entry.get("details") or entry.get("title"))
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return text_of(error.get("message"))
    return ""


def _error(meaning: Meaning, detail: str, response: httpx.Response, code: str | None) -> Exception:
    return error_for(
        "merchant",
        meaning,
        detail,
        status=response.status_code,
        code=code,
        retry_after=response_retry_after(response),
    )


__all__ = [
    "MerchantClient",
    "MerchantCredentials",
    "MerchantEndpoint",
    "MerchantReply",
    "invoices_of",
    "merchant_credentials",
    "with_appzen_note",
    "without_appzen_note",
]
