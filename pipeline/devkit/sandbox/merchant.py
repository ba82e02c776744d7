"""The sandbox's merchant platform (Shopwave / MerchantStack): ``GET`` / ``POST /invoice`` with
bearer tokens, ``POST /oauth/token`` (refresh), and the platform's message IDs.

Per request, in order: a queued error (``fail_next``), the rate (919, HTTP 429), the
Authorization header (911), the token (908: unknown or expired), ``denied`` (904), then the
route: store ownership (912), a missing or malformed field (913), an unknown invoice id (910), a
per-invoice error (``fail_invoices``). Success is 200 with message 202 (read) or 201 with 206
(written). Bodies: ``{"invoices": [...], "api": {"message": {"success"|"error": {id: {...}}}}}``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.devkit.sandbox.knobs import TokenBucket, retry_after_header
from pipeline.devkit.sandbox.wire import BodyError, JsonDict, dumps_exact, loads_exact
from pipeline.settings import SANDBOX_MERCHANT

MERCHANT_PREFIX = "/merchant"
ADMIN = "/_sandbox/merchant"
MESSAGES: dict[int, tuple[int, str, str]] = {
    202: (200, "tokenValid", "Token is valid"),
    206: (201, "resourceCreated", "Resource Created"),
    899: (500, "unknownError", "Unknown Error"),
    901: (400, "invalidClient", "Invalid Client"),
    904: (401, "accessDenied", "Access Denied"),
    906: (400, "invalidGrant", "Invalid Grant"),
    907: (401, "invalidToken", "Invalid Token"),
    908: (401, "expiredToken", "Expired Token"),
    910: (404, "notFound", "Not Found"),
    911: (401, "authorizationHeaderInvalid", "Authorization Header Invalid"),
    912: (403, "resourceNotAllowed", "Resource Not Allowed For Specified User"),
    913: (400, "requiredParameterMissing", "Required parameter or object missing in request"),
    919: (429, "tooManyRequests", "Cannot handle too many request"),
}


class MerchantState:
    """Invoices, tokens, counters and fault knobs of the merchant platform; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """No invoices, no tokens issued, default knobs."""
        with self._lock:
            self.client_id, self.client_secret, self._refresh = SANDBOX_MERCHANT
            self._tokens: dict[str, float] = {}
            self._invoices: dict[int, JsonDict] = {}
            self.token_ttl_s = 3600.0
            self.rotate_refresh = False
            self.owned_stores: frozenset[int] | None = None
            self.denied = False
            self._bucket: TokenBucket | None = None
            self._next_errors: deque[int] = deque()
            self._invoice_errors: dict[int, int] = {}
            self.requests: Counter[str] = Counter()
            self.accept_versions: Counter[str] = Counter()
            self.updates: list[tuple[int, str]] = []

    # --- test and admin controls ------------------------------------------------------------
    def seed(self, invoices: list[JsonDict]) -> None:
        """Add (or replace) invoices; each needs an integer ``id``."""
        with self._lock:
            for invoice in invoices:
                self._invoices[int(invoice["id"])] = dict(invoice)

    def invoice(self, invoice_id: int) -> JsonDict | None:
        """One invoice as the platform holds it."""
        with self._lock:
            found = self._invoices.get(int(invoice_id))
            return None if found is None else dict(found)

    def configure(self, **knobs: Any) -> None:
        """``rate`` (req/s, None = unlimited), ``token_ttl_s``, ``rotate_refresh``,
        ``owned_stores`` (None = all), ``denied``, ``fail_next`` (error IDs for the next
        requests), ``fail_invoices`` ({invoice id: error ID} on update), ``expire_tokens``."""
        with self._lock:
            if "rate" in knobs:
                rate = knobs["rate"]
                self._bucket = None if rate is None else TokenBucket(float(rate))
            if "owned_stores" in knobs:
                stores = knobs["owned_stores"]
                self.owned_stores = None if stores is None else frozenset(map(int, stores))
            for name in ("token_ttl_s", "rotate_refresh", "denied"):
                if name in knobs:
                    setattr(self, name, knobs[name])
            self._next_errors.extend(int(i) for i in knobs.get("fail_next", ()))
            self._invoice_errors.update(
                {int(k): int(v) for k, v in knobs.get("fail_invoices", {}).items()}
            )
            if knobs.get("expire_tokens"):
                self._tokens = dict.fromkeys(self._tokens, 0.0)

    @property
    def refresh_token(self) -> str:
        """The refresh token the platform accepts now."""
        with self._lock:
            return self._refresh

    def snapshot(self) -> JsonDict:
        """Invoices, request counts and note updates (for ``GET /_sandbox/merchant/state``)."""
        with self._lock:
            return {
                "invoices": list(self._invoices.values()),
                "requests": dict(self.requests),
                "updates": [{"id": i, "note": n} for i, n in self.updates],
            }

    # --- used by the routes -----------------------------------------------------------------
    def gate(self, route: str, authorization: str | None, version: str | None) -> int | None:
        """The error ID that answers this request before its route runs, if any."""
        with self._lock:
            self.requests[route] += 1
            self.accept_versions[version or ""] += 1
            if self._next_errors:
                return self._next_errors.popleft()
            if self._bucket is not None and self._bucket.take() is not None:
                return 919
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
                return 911
            if self._tokens.get(token.strip(), 0.0) <= time.monotonic():
                return 908
            return 904 if self.denied else None

    def refresh(self, body: object) -> tuple[int, JsonDict]:
        """``POST /oauth/token``: (message ID or 0, new tokens)."""
        if not isinstance(body, dict):
            return 913, {}
        with self._lock:
            self.requests["POST /oauth/token"] += 1
            if body.get("grant_type") != "refresh_token":
                return 906, {}
            if (body.get("client_id"), body.get("client_secret")) != (
                self.client_id,
                self.client_secret,
            ):
                return 901, {}
            if body.get("refresh_token") != self._refresh:
                return 907, {}
            access = "sbx-" + secrets.token_hex(12)
            self._tokens[access] = time.monotonic() + self.token_ttl_s
            if self.rotate_refresh:
                self._refresh = "sandbox-refresh-" + secrets.token_hex(6)
            return 0, {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": int(self.token_ttl_s),
                "refresh_token": self._refresh,
            }

    def read(self, store_ids: list[int], invoice_ids: list[int]) -> tuple[int, list[JsonDict]]:
        """``GET /invoice``: (0 or an error ID, the invoices that match)."""
        with self._lock:
            if self.owned_stores is not None and not set(store_ids) <= self.owned_stores:
                return 912, []
            found = [
                dict(invoice)
                for key, invoice in sorted(self._invoices.items())
                if (not store_ids or int(invoice.get("storeId", -1)) in store_ids)
                and (not invoice_ids or key in invoice_ids)
                and (self.owned_stores is None or invoice.get("storeId") in self.owned_stores)
            ]
            return 0, found

    def write(self, invoices: object) -> tuple[int, str, list[JsonDict]]:
        """``POST /invoice``: (0 or an error ID, detail, the invoices as stored)."""
        if not isinstance(invoices, list) or not invoices:
            return 913, "invoices must be a non-empty list", []
        with self._lock:
            stored = []
            for item in invoices:
                error, detail, invoice = self._write_one(item)
                if error:
                    return error, detail, []
                stored.append(invoice)
            return 0, "", stored

    def _write_one(self, item: object) -> tuple[int, str, JsonDict]:
        if not isinstance(item, dict):
            return 913, "each invoice must be an object", {}
        new = "id" not in item
        if new:
            missing = [k for k in ("supplierId", "storeId", "reference") if k not in item]
            if missing:
                return 913, f"a new invoice needs {', '.join(missing)}", {}
            item = {**item, "id": max(self._invoices, default=880000) + 1}
        error, detail = self._refusal(item, new)
        if error:
            return error, detail, {}
        invoice = {**self._invoices.get(item["id"], {}), **item}
        self._invoices[item["id"]] = invoice
        if "note" in item:
            self.updates.append((item["id"], item["note"]))
        return 0, "", dict(invoice)

    def _refusal(self, item: JsonDict, new: bool) -> tuple[int, str]:
        key = item["id"]
        if not isinstance(key, int) or isinstance(key, bool):
            return 913, "id must be an integer"
        old = item if new else self._invoices.get(key)
        if old is None:
            return 910, f"no invoice with id {key}"
        if self.owned_stores is not None and old.get("storeId") not in self.owned_stores:
            return 912, f"invoice {key} belongs to another merchant"
        if key in self._invoice_errors:
            return self._invoice_errors[key], f"invoice {key} cannot be updated (sandbox)"
        if "note" in item and not isinstance(item["note"], str):
            return 913, "note must be a string"
        return 0, ""


def _message(message_id: int, details: str = "") -> tuple[int, JsonDict]:
    status, code, title = MESSAGES.get(message_id, (500, "unknownError", "Unknown Error"))
    entry = {"id": message_id, "code": code, "statusCode": status, "title": title}
    entry["details"] = details or title
    return status, entry


def _answer(message_id: int, details: str = "", **body: Any) -> Response:
    status, entry = _message(message_id, details)
    kind = "success" if status < 400 else "error"
    payload: JsonDict = dict(body)
    if kind == "error":
        payload["error"] = {"code": status, "message": entry["title"], "details": [details]}
    payload["api"] = {"message": {kind: {str(message_id): entry}}, "codeBaseVersion": "2.0"}
    headers = {"retry-after": retry_after_header(1.0)} if message_id == 919 else None
    return Response(dumps_exact(payload), status, headers, media_type="application/json")


def _ids(value: str | None) -> list[int] | None:
    """``"53,54"`` → ``[53, 54]``; ``None`` when malformed."""
    parts = [part.strip() for part in (value or "").split(",") if part.strip()]
    return [int(part) for part in parts] if all(part.isdigit() for part in parts) else None


class MerchantRoutes:
    """The platform's routes under :data:`MERCHANT_PREFIX` and its admin routes."""

    def __init__(self, state: MerchantState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """API and admin routes."""
        return [
            Route(f"{MERCHANT_PREFIX}/invoice", self.invoice, methods=["GET", "POST"]),
            Route(f"{MERCHANT_PREFIX}/oauth/token", self.token, methods=["POST"]),
            Route(f"{ADMIN}/state", self.admin_state, methods=["GET"]),
            Route(f"{ADMIN}/invoices", self.admin_seed, methods=["POST"]),
            Route(f"{ADMIN}/configure", self.admin_configure, methods=["POST"]),
        ]

    async def invoice(self, request: Request) -> Response:
        """``GET /invoice`` (filters in headers) or ``POST /invoice`` (insert or update)."""
        route = f"{request.method} /invoice"
        headers = request.headers
        gated = self.state.gate(
            route, headers.get("authorization"), headers.get("x-accept-version")
        )
        if gated is not None:
            return _answer(gated)
        if request.method == "GET":
            return self._read(request)
        body = await _json(request)
        invoices = body.get("invoices") if isinstance(body, dict) else None
        error, detail, stored = self.state.write(invoices)
        return _answer(error, detail) if error else _answer(206, invoices=stored)

    def _read(self, request: Request) -> Response:
        stores = _ids(request.headers.get("storeids"))
        wanted = _ids(request.headers.get("invoiceid"))
        if stores is None or wanted is None:
            return _answer(913, "storeIds and invoiceId are comma-separated integers")
        error, found = self.state.read(stores, wanted)
        return _answer(error) if error else _answer(202, invoices=found)

    async def token(self, request: Request) -> Response:
        """``POST /oauth/token`` with ``grant_type=refresh_token``."""
        error, tokens = self.state.refresh(await _json(request))
        if error:
            return _answer(error)
        return Response(dumps_exact(tokens), 200, media_type="application/json")

    async def admin_state(self, request: Request) -> Response:
        """Invoices, request counts and note updates."""
        return Response(dumps_exact(self.state.snapshot()), media_type="application/json")

    async def admin_seed(self, request: Request) -> Response:
        """Add invoices: ``{"invoices": [{id, storeId, …}]}``."""
        body = await _json(request)
        invoices = body.get("invoices") if isinstance(body, dict) else None
        if not isinstance(invoices, list) or not all(
            isinstance(i, dict) and isinstance(i.get("id"), int) for i in invoices
        ):
            return Response('{"error": "send {\\"invoices\\": [{\\"id\\": 1, ...}]}"}', 400)
        self.state.seed(invoices)
        return Response(dumps_exact({"seeded": len(invoices)}), media_type="application/json")

    async def admin_configure(self, request: Request) -> Response:
        """Change knobs (see :meth:`MerchantState.configure`)."""
        body = await _json(request)
        if not isinstance(body, dict):
            return Response('{"error": "send a JSON object of knobs"}', 400)
        try:
            self.state.configure(**body)
        except (TypeError, ValueError) as error:
            return Response(dumps_exact({"error": str(error)}), 400, media_type="application/json")
        return Response(b'{"status": "configured"}', media_type="application/json")


async def _json(request: Request) -> object:
    try:
        return loads_exact(await request.body())
    except BodyError:
        return None
