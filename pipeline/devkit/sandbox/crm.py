"""The sandbox's CRM.COM V4: ``POST authentication/token``, ``POST invoices/reject`` (DRAFT
invoices only) and ``GET invoices/show``, every answer ``{"status": {"code", "message",
"description"}, "data": {…}}`` with HTTP 200 (only the rate limit answers 429).

Tokens expire ``token_ttl_s`` after login on the sandbox's own clock, which :meth:`CrmState.advance`
moves forward (tests expire tokens without waiting). Codes: ``OK``, ``AUTHENTICATION_FAILED``,
``INVALID_TOKEN``, ``INVALID_PARAMETERS``, ``NOT_FOUND``, ``INVALID_REJECTION_REASON``,
``INVALID_LIFE_CYCLE_STATE``, ``TOO_MANY_REQUESTS``; ``fail_next`` queues any code.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.devkit.sandbox.knobs import TokenBucket
from pipeline.devkit.sandbox.wire import BodyError, JsonDict, dumps_exact, loads_exact
from pipeline.settings import SANDBOX_CRM

CRM_PREFIX = "/crm"
ADMIN = "/_sandbox/crm"
IDENTIFIERS = ("id", "number", "reference_number")
REASONS = ("Reject Due to Error", "Reject Due to Business Request", "Reject Due to Duplicate")
STATES = ("DRAFT", "REJECTED", "POSTED", "CANCELLED")


class CrmError(Exception):
    """A CRM.COM status code with its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class CrmState:
    """Users, tokens, invoices, rejection reasons, counters and knobs; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """No invoices, no tokens, the sandbox login, default knobs, the clock back at zero."""
        with self._lock:
            username, password, organisation = SANDBOX_CRM
            self._users = {(username, organisation): password}
            self._tokens: dict[str, float] = {}
            self._invoices: dict[str, JsonDict] = {}
            self.reasons = {name: f"R{index:04d}" for index, name in enumerate(REASONS, 1)}
            self.token_ttl_s = 7200.0
            self._offset = 0.0
            self._bucket: TokenBucket | None = None
            self._next: deque[str] = deque()
            self.requests: Counter[str] = Counter()

    # --- test and admin controls ------------------------------------------------------------
    def add_invoice(
        self, reference_number: str, state: str = "DRAFT", *, number: str | None = None
    ) -> JsonDict:
        """An invoice in ``state`` (DRAFT, REJECTED, POSTED, CANCELLED); its view."""
        if state not in STATES:
            raise ValueError(f"life_cycle_state must be one of {STATES}, not {state!r}")
        with self._lock:
            invoice_id = secrets.token_hex(16).upper()
            invoice = {
                "id": invoice_id,
                "number": number or f"I{len(self._invoices) + 1:08d}",
                "reference_number": reference_number,
                "life_cycle_state": state,
                "total_amount": 0,
                "rejection_reason": None,
            }
            self._invoices[invoice_id] = invoice
            return dict(invoice)

    def invoice(self, field: str, value: str) -> JsonDict | None:
        """The invoice whose ``field`` (id, number, reference_number) is ``value``."""
        with self._lock:
            found = self._find(field, value)
            return None if found is None else dict(found)

    def advance(self, seconds: float) -> None:
        """Move the sandbox's clock forward (tokens expire as if that much time passed)."""
        with self._lock:
            self._offset += seconds

    def configure(self, **knobs: Any) -> None:
        """``token_ttl_s``, ``rate`` (req/s, None = unlimited), ``fail_next`` (codes for the
        next requests: ``CODE`` for any route, ``login:CODE`` / ``reject:CODE`` / ``show:CODE``
        for one), ``advance_s`` (move the clock)."""
        if "advance_s" in knobs:
            self.advance(float(knobs["advance_s"]))
        with self._lock:
            if "token_ttl_s" in knobs:
                self.token_ttl_s = float(knobs["token_ttl_s"])
            if "rate" in knobs:
                self._bucket = None if knobs["rate"] is None else TokenBucket(float(knobs["rate"]))
            self._next.extend(str(code) for code in knobs.get("fail_next", ()))

    def snapshot(self) -> JsonDict:
        """Invoices and request counts (for ``GET /_sandbox/crm/state``)."""
        with self._lock:
            return {"invoices": list(self._invoices.values()), "requests": dict(self.requests)}

    # --- used by the routes -----------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() + self._offset

    def _find(self, field: str, value: str) -> JsonDict | None:
        return next((i for i in self._invoices.values() if str(i.get(field)) == value), None)

    def admit(self, route: str) -> str | None:
        """Count a request; ``TOO_MANY_REQUESTS`` or a queued code, if one answers it."""
        with self._lock:
            self.requests[route] += 1
            if self._bucket is not None and self._bucket.take() is not None:
                return "TOO_MANY_REQUESTS"
            for queued in self._next:
                where, _, code = queued.rpartition(":")
                if where in ("", route):
                    self._next.remove(queued)
                    return code
            return None

    def login(self, body: object) -> JsonDict:
        """A new token for a known (username, organisation, password)."""
        fields = body if isinstance(body, dict) else {}
        key = (fields.get("username"), fields.get("organisation"))
        with self._lock:
            expected = self._users.get(key)  # type: ignore[arg-type]
            if expected is None or not secrets.compare_digest(
                str(fields.get("password", "")).encode(), expected.encode()
            ):
                raise CrmError(
                    "AUTHENTICATION_FAILED", "Invalid username, password or organisation"
                )
            token = secrets.token_hex(16).upper()
            self._tokens[token] = self._now() + self.token_ttl_s
            return {"token": token}

    def check_token(self, token: object) -> None:
        """``INVALID_TOKEN`` for a missing, unknown or expired token."""
        with self._lock:
            expires = self._tokens.get(str(token)) if token else None
            if expires is None:
                raise CrmError("INVALID_TOKEN", "The token is not valid; log in again")
            if expires <= self._now():
                raise CrmError("INVALID_TOKEN", "The token has expired; log in again")

    def reject(self, identifier: object, reason: object) -> JsonDict:
        """Reject a DRAFT invoice with an optional known reason; the invoice's view."""
        field, value = _identifier(identifier)
        name = self._reason(reason)
        with self._lock:
            invoice = self._find(field, value)
            if invoice is None:
                raise CrmError("NOT_FOUND", f"No invoice with {field} {value!r}")
            if invoice["life_cycle_state"] != "DRAFT":
                state = invoice["life_cycle_state"]
                raise CrmError(
                    "INVALID_LIFE_CYCLE_STATE",
                    f"The invoice is {state}; only DRAFT invoices can be rejected",
                )
            invoice.update(life_cycle_state="REJECTED", rejection_reason=name)
            return dict(invoice)

    def show(self, identifier: str | None) -> JsonDict:
        """The invoice ``field=value`` names."""
        field, _, value = (identifier or "").partition("=")
        if field not in IDENTIFIERS or not value:
            raise CrmError("INVALID_PARAMETERS", "invoice_identifier must be <field>=<value>")
        with self._lock:
            invoice = self._find(field, value)
            if invoice is None:
                raise CrmError("NOT_FOUND", f"No invoice with {field} {value!r}")
            return dict(invoice)

    def _reason(self, reason: object) -> str | None:
        if reason is None:
            return None
        if not isinstance(reason, dict) or len(reason) != 1:
            raise CrmError("INVALID_PARAMETERS", "rejection_reason_identifier takes name or id")
        ((field, value),) = reason.items()
        names = {v: k for k, v in self.reasons.items()} if field == "id" else None
        known = names.get(value) if names is not None else value if value in self.reasons else None
        if field not in ("name", "id") or known is None:
            raise CrmError("INVALID_REJECTION_REASON", f"Unknown rejection reason {value!r}")
        return str(known)


def _identifier(identifier: object) -> tuple[str, str]:
    given = identifier if isinstance(identifier, dict) else {}
    fields = [key for key in IDENTIFIERS if given.get(key) not in (None, "")]
    if len(fields) != 1 or len(given) != 1:
        raise CrmError(
            "INVALID_PARAMETERS",
            "invoice_identifier takes exactly one of id, number, reference_number",
        )
    return fields[0], str(given[fields[0]])


def _answer(code: str, message: str = "", data: JsonDict | None = None) -> Response:
    body = {
        "status": {"code": code, "message": message or None, "description": message or None},
        "data": data or {},
    }
    status = 429 if code == "TOO_MANY_REQUESTS" else 200
    return Response(dumps_exact(body), status, media_type="application/json")


class CrmRoutes:
    """CRM.COM's routes under :data:`CRM_PREFIX` and the admin routes."""

    def __init__(self, state: CrmState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """API and admin routes."""
        return [
            Route(f"{CRM_PREFIX}/authentication/token", self.login, methods=["POST"]),
            Route(f"{CRM_PREFIX}/invoices/reject", self.reject, methods=["POST"]),
            Route(f"{CRM_PREFIX}/invoices/show", self.show, methods=["GET"]),
            Route(f"{ADMIN}/state", self.admin_state, methods=["GET"]),
            Route(f"{ADMIN}/invoices", self.admin_add, methods=["POST"]),
            Route(f"{ADMIN}/configure", self.admin_configure, methods=["POST"]),
        ]

    async def login(self, request: Request) -> Response:
        """``POST authentication/token``."""
        body = await _json(request)
        return self._run("login", lambda: self.state.login(body))

    async def reject(self, request: Request) -> Response:
        """``POST invoices/reject``."""
        body = _body_of(await _json(request))

        def work() -> JsonDict:
            self.state.check_token(body.get("token"))
            return self.state.reject(
                body.get("invoice_identifier"), body.get("rejection_reason_identifier")
            )

        return self._run("reject", work)

    async def show(self, request: Request) -> Response:
        """``GET invoices/show?token=…&invoice_identifier=<field>=<value>``."""
        params = request.query_params

        def work() -> JsonDict:
            self.state.check_token(params.get("token"))
            return self.state.show(params.get("invoice_identifier"))

        return self._run("show", work)

    def _run(self, route: str, work: Callable[[], JsonDict]) -> Response:
        code = self.state.admit(route)
        if code is not None:
            return _answer(
                code, "sandbox: too many requests" if code == "TOO_MANY_REQUESTS" else ""
            )
        try:
            return _answer("OK", data=work())
        except CrmError as error:
            return _answer(error.code, error.message)

    async def admin_state(self, request: Request) -> Response:
        """Invoices and request counts."""
        return Response(dumps_exact(self.state.snapshot()), media_type="application/json")

    async def admin_add(self, request: Request) -> Response:
        """Add invoices: ``{"invoices": [{"reference_number": "559", "state": "DRAFT"}]}``."""
        body = _body_of(await _json(request))
        added = []
        for item in body.get("invoices") or []:
            try:
                added.append(
                    self.state.add_invoice(
                        str(item["reference_number"]), item.get("state", "DRAFT")
                    )
                )
            except (KeyError, TypeError, ValueError) as error:
                return Response(
                    dumps_exact({"error": str(error)}), 400, media_type="application/json"
                )
        return Response(dumps_exact({"invoices": added}), media_type="application/json")

    async def admin_configure(self, request: Request) -> Response:
        """Change knobs (see :meth:`CrmState.configure`)."""
        try:
            self.state.configure(**_body_of(await _json(request)))
        except (TypeError, ValueError) as error:
            return Response(dumps_exact({"error": str(error)}), 400, media_type="application/json")
        return Response(b'{"status": "configured"}', media_type="application/json")


def _body_of(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def _json(request: Request) -> object:
    try:
        return loads_exact(await request.body())
    except BodyError:
        return None
