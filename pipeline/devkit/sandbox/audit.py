"""The sandbox's AppZen audit: ``POST /invoice/search`` and ``GET /invoice/{uuid}/audit-results``,
with an admin call (and :meth:`AuditState.set_outcome`) that decides an invoice's audit.

An invoice's ``appzen-invoice-status`` is ``PROCESSED`` once approved, ``REJECTED`` once
rejected, ``IN_PROGRESS`` until then; its ``last-appzen-update-time`` is the later of its last
create-or-update and its audit (to the millisecond). Search needs both window ends and answers
every invoice updated inside them (inclusive), optionally of one status, invoice id or number.
These are AppZen routes: they pass the sandbox's gate (quota, latency, faults) and its auth.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.devkit.sandbox.wire import BodyError, JsonDict, dumps_exact, loads_exact

if TYPE_CHECKING:
    from pipeline.devkit.sandbox.state import SandboxState, StoredInvoice

PREFIX = "/dictionary-data-services"
ADMIN = "/_sandbox/audit"
STATUS_OF = {"Approved": "PROCESSED", "Rejected": "REJECTED"}


@dataclass(frozen=True, slots=True)
class Audit:
    """AppZen's verdict on one invoice."""

    status: str
    risk_level: str | None
    rules: tuple[JsonDict, ...]
    updated_at: float

    def to_json(self) -> JsonDict:
        """The ``audit-results`` body."""
        return {
            "audit_results": {
                "rules": list(self.rules),
                "risk_level": self.risk_level,
                "status": self.status,
            }
        }


class AuditState:
    """Audits by uuid; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._audits: dict[str, Audit] = {}

    def reset(self) -> None:
        """Forget every audit."""
        with self._lock:
            self._audits = {}

    def set_outcome(
        self,
        uuid: str,
        status: str,
        rules: list[JsonDict] | None = None,
        risk_level: str | None = None,
    ) -> Audit:
        """Decide an invoice's audit: ``Approved`` or ``Rejected``, with its rules
        (``{rule_code, risk_message, risk_results: {risk_level}}``)."""
        if status not in STATUS_OF:
            raise ValueError(f"status must be Approved or Rejected, not {status!r}")
        default = "HIGH" if status == "Rejected" else "LOW"
        audit = Audit(status, risk_level or default, tuple(rules or ()), time.time())
        with self._lock:
            self._audits[uuid] = audit
        return audit

    def audit(self, uuid: str) -> Audit | None:
        """The audit of one uuid, if decided."""
        with self._lock:
            return self._audits.get(uuid)


class AuditRoutes:
    """Search and audit-results under AppZen's prefix, and the admin route that decides."""

    def __init__(self, state: SandboxState, authenticate: Callable[[Request], None]) -> None:
        self.state = state
        self.audits: AuditState = state.audit
        self._authenticate = authenticate

    def routes(self) -> list[Route]:
        """The AppZen routes and ``POST /_sandbox/audit/{invoice_id or uuid}``."""
        return [
            Route(f"{PREFIX}/invoice/search", self.search, methods=["POST"]),
            Route(f"{PREFIX}/invoice/{{uuid}}/audit-results", self.results, methods=["GET"]),
            Route(f"{ADMIN}/{{key:path}}", self.decide, methods=["POST"]),
        ]

    async def search(self, request: Request) -> Response:
        """Invoices updated inside the window (and matching the optional filters)."""
        self._authenticate(request)
        body = await _json(request)
        start, end = _moment(body, "from"), _moment(body, "to")
        wanted = {key: body.get(key) for key in ("appzen-invoice-status", "invoice-id")}
        hits = []
        for record in self.state.invoices().values():
            hit = self._hit(record)
            updated = _parse(hit["last-appzen-update-time"])
            if not start <= updated <= end:
                continue
            if wanted["appzen-invoice-status"] not in (None, hit["appzen-invoice-status"]):
                continue
            if wanted["invoice-id"] not in (None, record.invoice_id):
                continue
            hits.append(hit)
        return Response(dumps_exact(hits), media_type="application/json")

    async def results(self, request: Request) -> Response:
        """The audit of one uuid: 404 when AppZen does not know it or has not decided."""
        self._authenticate(request)
        uuid = request.path_params["uuid"]
        if self.state.invoice_by_uuid(uuid) is None:
            raise HTTPException(404, f"No invoice with uuid {uuid[:64]!r}")
        audit = self.audits.audit(uuid)
        if audit is None:
            raise HTTPException(404, f"No audit results yet for uuid {uuid[:64]!r}")
        return Response(dumps_exact(audit.to_json()), media_type="application/json")

    async def decide(self, request: Request) -> Response:
        """``{"status": "Rejected", "rules": [...], "risk_level": "HIGH"}`` for an invoice named
        by ``invoice_id`` or uuid."""
        key = request.path_params["key"]
        record = self.state.invoice(key) or self.state.invoice_by_uuid(key)
        if record is None:
            raise HTTPException(404, f"no invoice with invoice_id or uuid {key[:64]!r}")
        body = await _json(request)
        try:
            audit = self.audits.set_outcome(
                record.uuid, str(body.get("status")), body.get("rules"), body.get("risk_level")
            )
        except (TypeError, ValueError) as error:
            raise HTTPException(400, str(error)) from None
        return Response(dumps_exact(audit.to_json()), media_type="application/json")

    def _hit(self, record: StoredInvoice) -> JsonDict:
        audit = self.audits.audit(record.uuid)
        updated = max(record.last_received, audit.updated_at if audit else 0.0)
        payload = record.payload
        return {
            "erp-invoice-id": record.invoice_id,
            "erp-invoice-status": payload.get("invoice_status"),
            "appzen-uuid": record.uuid,
            "appzen-invoice-status": STATUS_OF[audit.status] if audit else "IN_PROGRESS",
            "last-appzen-update-time": _stamp(updated),
        }


def _stamp(epoch: float) -> str:
    """``2021-06-16T18:53:38.603Z``: the time floored to the millisecond."""
    moment = datetime.fromtimestamp(math.floor(epoch * 1000) / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _moment(body: dict[str, Any], end: str) -> datetime:
    key = f"{end}-last-appzen-update-time"
    value = body.get(key)
    try:
        moment = _parse(str(value)) if value else None
    except ValueError:
        moment = None
    if moment is None:
        raise HTTPException(400, f"{key}: required, an ISO-8601 UTC time (2020-11-01T11:01:00Z)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = loads_exact(await request.body())
    except BodyError as error:
        raise HTTPException(400, str(error)) from None
    if not isinstance(body, dict):
        raise HTTPException(400, "send a JSON object")
    return body


__all__ = ["Audit", "AuditRoutes", "AuditState"]
