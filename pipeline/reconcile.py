"""Reconciliation: read sent invoices back from AppZen and report, field by field, any drift.

Opt-in only (``appzen-etl verify``): it reads through AppZen's **deprecated** get-details endpoint
(``GET /invoice/{uuid}``). For a random sample of invoices staging records as sent, it compares
what staging says was acknowledged (``acked_payload``, the exact bytes sent) with what AppZen
answers, after folding get-details' nested address shape back into the flat one we send.

Only what was sent is compared: keys AppZen adds (document links, defaults) are not drift; a sent
key AppZen lacks is. Numbers compare as exact decimals (``200.00`` equals ``200.0``; floats never
enter), booleans only with booleans. A 404 is an invoice *missing* in AppZen; an invoice that could
not be read (retries exhausted, another row-level answer) is *unreadable*. Reads go through the
:class:`~pipeline.runtime.dispatch.Dispatcher`, so they share the configured rate limit and retries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

from pipeline.appzen.client import AppZenClient, client_session
from pipeline.appzen.errors import UnknownInvoice
from pipeline.appzen.models import InvoiceDetails, json_bytes
from pipeline.runtime.clock import SYSTEM_CLOCK, Clock
from pipeline.runtime.dispatch import CallResult, Dispatcher, describe
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.records import InvoiceRecord

DEPRECATION_NOTE: Final = (
    "verify reads invoices back through AppZen's deprecated get-details endpoint "
    "(GET /invoice/{uuid}); AppZen may remove it, and each read counts against the quota"
)
NAMED_ADDRESSES: Final = (
    "supplier_address",
    "billing_address",
    "shipping_address",
    "remit_to_address",
)
_SITE_KEYS: Final = ("site_id", "site_name", "custom_json")
STRING_OR_LIST: Final = frozenset({"vat_registration_numbers"})
"""Paths the create page types as a string and get-details as a list: ``"X"`` equals ``["X"]``."""

Kind = Literal["differs", "missing", "unreadable"]


class _Absent:
    """The marker for a key one side does not have."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(absent)"

    def __bool__(self) -> bool:
        return False


ABSENT: Final = _Absent()
"""A key one side does not have (printed ``(absent)``, left out of ``--json``)."""


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference: where AppZen's copy of an invoice differs from what was sent.

    ``kind`` is ``differs`` (``path`` holds different values), ``missing`` (AppZen answered 404
    for the uuid; ``path`` is empty) or ``unreadable`` (the read failed; ``message`` says why).
    ``sent`` and ``appzen`` are JSON values (decimals exact) or :data:`ABSENT`.
    """

    invoice_id: str
    uuid: str
    path: str
    sent: object = ABSENT
    appzen: object = ABSENT
    kind: Kind = "differs"
    message: str | None = None


@dataclass(slots=True)
class ReconcileReport:
    """What a reconciliation found: how many invoices were sampled and read, and every drift."""

    mapping: str
    sampled: int = 0
    checked: int = 0
    drifts: list[Drift] = field(default_factory=list)
    fatal: str | None = None

    @property
    def drifted(self) -> bool:
        """True when any invoice differs, is missing in AppZen, or could not be read."""
        return bool(self.drifts)

    def count(self, kind: Kind) -> int:
        """How many drifts of ``kind``."""
        return sum(1 for drift in self.drifts if drift.kind == kind)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """One text row per drift for a table: invoice_id, uuid, field, sent, AppZen."""
        return [
            (
                d.invoice_id,
                d.uuid,
                d.path or f"({d.kind})",
                render_value(d.sent),
                render_value(d.appzen) if d.kind == "differs" else d.message or "",
            )
            for d in self.drifts
        ]

    def to_json(self) -> bytes:
        """The report as JSON; amounts are exact numbers, absent values are left out."""
        return json_bytes(
            {
                "mapping": self.mapping,
                "sampled": self.sampled,
                "checked": self.checked,
                "differs": self.count("differs"),
                "missing": self.count("missing"),
                "unreadable": self.count("unreadable"),
                "fatal": self.fatal,
                "drifts": [_drift_json(drift) for drift in self.drifts],
            }
        )


def _drift_json(drift: Drift) -> dict[str, object]:
    values: dict[str, object] = {
        "invoice_id": drift.invoice_id,
        "uuid": drift.uuid,
        "kind": drift.kind,
        "path": drift.path,
    }
    for name in ("sent", "appzen", "message"):
        value = getattr(drift, name)
        if value is not ABSENT and not (name == "message" and value is None):
            values[name] = value
    return values


def render_value(value: object) -> str:
    """A value as compact JSON text (amounts exact, ``"10"`` vs ``10`` visible); ``(absent)``."""
    return repr(ABSENT) if value is ABSENT else json_bytes(value).decode()


# --- comparing ------------------------------------------------------------------------------
def flatten_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """A get-details answer in the create shape: each named address
    ``{address_type, address: {address_type, address: {...}, site_id, …}}`` folded back to the
    flat ``{address_type, address_line1, …, site_id, …}`` (keys that are null dropped)."""
    flat = dict(details)
    for key in NAMED_ADDRESSES:
        value = flat.get(key)
        if isinstance(value, dict):
            flat[key] = _flat_address(value)
    return flat


def _flat_address(outer: dict[str, Any]) -> dict[str, Any]:
    site = outer.get("address")
    if not isinstance(site, dict) or not isinstance(site.get("address"), dict):
        return outer  # already flat (or a shape we do not know): compare it as it is
    folded: dict[str, Any] = dict(site["address"])
    address_type = site.get("address_type") or outer.get("address_type")
    if address_type is not None:
        folded["address_type"] = address_type
    for key in _SITE_KEYS:
        if site.get(key) is not None:
            folded[key] = site[key]
    return folded


def compare(sent: object, appzen: object, path: str = "") -> Iterator[tuple[str, object, object]]:
    """Every ``(path, sent value, AppZen value)`` where AppZen differs from what was sent.

    Walks what was sent: keys only AppZen has are ignored, list items only AppZen has are not.
    """
    if isinstance(sent, dict):
        if not isinstance(appzen, dict):
            yield path, sent, appzen
            return
        for key, value in sent.items():
            other = appzen.get(key, ABSENT)
            if value is None and other in (None, ABSENT):
                continue
            yield from compare(value, other, _join(path, key))
    elif isinstance(sent, list):
        yield from _compare_lists(sent, appzen, path)
    elif not _same(sent, appzen, path):
        yield path, sent, appzen


def _compare_lists(
    sent: list[Any], appzen: object, path: str
) -> Iterator[tuple[str, object, object]]:
    if not isinstance(appzen, list):
        yield path, sent, appzen
        return
    for index in range(max(len(sent), len(appzen))):
        mine = sent[index] if index < len(sent) else ABSENT
        theirs = appzen[index] if index < len(appzen) else ABSENT
        if mine is ABSENT:
            yield _join(path, str(index)), ABSENT, theirs
        else:
            yield from compare(mine, theirs, _join(path, str(index)))


def _same(sent: object, appzen: object, path: str) -> bool:
    if isinstance(sent, bool) or isinstance(appzen, bool):
        return type(sent) is type(appzen) and sent == appzen
    if isinstance(sent, int | Decimal) and isinstance(appzen, int | Decimal):
        return Decimal(sent) == Decimal(appzen)
    if path in STRING_OR_LIST and isinstance(sent, str) and appzen == [sent]:
        return True
    return type(sent) is type(appzen) and sent == appzen


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _loads(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Decimal)


def drifts_of(record: InvoiceRecord, details: InvoiceDetails) -> list[Drift]:
    """The field-by-field drifts of one invoice: staging's acknowledged payload vs AppZen's."""
    if record.uuid is None or record.acked_payload is None:
        raise ValueError(
            f"drifts_of: staging has no uuid or acknowledged payload for {record.invoice_id!r}; "
            "only invoices in state sent can be compared"
        )
    sent = _loads(record.acked_payload)
    appzen = flatten_details(details.model_dump(mode="python", exclude_unset=True))
    return [
        Drift(record.invoice_id, record.uuid, path, mine, theirs)
        for path, mine, theirs in compare(sent, appzen)
    ]


# --- reading back -----------------------------------------------------------------------------
async def reconcile(
    store: StagingStore,
    client: AppZenClient,
    dispatcher: Dispatcher,
    mapping: str,
    sample: int,
) -> ReconcileReport:
    """Read ``sample`` random sent invoices of ``mapping`` back from AppZen and compare them."""
    if sample < 1:
        raise ValueError(f"reconcile: sample={sample} must be at least 1 (--sample N)")
    sampled = await asyncio.to_thread(store.sample_sent, mapping, sample)
    records = [r for r in sampled if r.uuid and r.acked_payload is not None]
    report = ReconcileReport(mapping, sampled=len(records))

    async def read(record: InvoiceRecord) -> InvoiceDetails:
        assert record.uuid is not None
        return await client.get_invoice(record.uuid)

    outcome = await dispatcher.run(records, read)
    for result in sorted(outcome.results, key=lambda r: r.item.invoice_id):
        report.drifts.extend(_judge(result))
        report.checked += result.value is not None
    report.fatal = str(outcome.fatal) if outcome.fatal else None
    return report


def _judge(result: CallResult[InvoiceRecord, InvoiceDetails]) -> list[Drift]:
    record = result.item
    uuid = record.uuid or ""
    if result.value is not None:
        return drifts_of(record, result.value)
    assert result.error is not None
    error = describe(result.error)
    if isinstance(result.error, UnknownInvoice):
        message = (
            f"AppZen has no invoice with this uuid (HTTP 404; x-correlation-id "
            f"{error.correlation_id or 'none'}) although staging recorded it as acknowledged: "
            "resend it (appzen-etl sync --force --since <a time before its last ERP change>)"
        )
        return [Drift(record.invoice_id, uuid, "", kind="missing", message=message)]
    return [Drift(record.invoice_id, uuid, "", kind="unreadable", message=str(result.error))]


async def verify(
    settings: Settings,
    store: StagingStore,
    mapping: str,
    sample: int,
    *,
    client: AppZenClient | None = None,
    clock: Clock = SYSTEM_CLOCK,
    dispatcher: Dispatcher | None = None,
) -> ReconcileReport:
    """:func:`reconcile` with an AppZen client and a dispatcher built from ``settings`` (or the
    ones given): ``appzen-etl verify``."""
    budget = None if dispatcher else store.daily_budget(settings, "verify")
    async with client_session(settings, client) as session:
        # reads only: an invoice AppZen does not answer for is listed unreadable (no breaker)
        calls = dispatcher or Dispatcher.from_settings(
            settings, clock, breaker=False, budget=budget
        )
        try:
            return await reconcile(store, session, calls, mapping, sample)
        finally:
            if budget is not None:
                budget.close()
