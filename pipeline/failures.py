"""RowFailure: a bad row is data, not an exception; every stage reports what it could not take."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

Stage = Literal[
    "extract",
    "mapping",
    "validation",
    "check",
    "warning",
    "appzen",
    "retries_exhausted",
    "status_sync",
    "audit",
    "merchant",
    "crm",
]
"""Where a row failed: reading the source, applying the mapping, validating the AppZen schema,
an AP pre-flight check (``check``: not sent; ``warning``: sent, noted in the report),
rejected by AppZen (4xx), given up after the retry budget, refused by status-sync; or, writing
AppZen's outcomes back (pipeline.connectors): reading the outcome, the merchant note, CRM.COM."""

MAX_VALUE_CHARS = 200


def shorten(value: object, limit: int = MAX_VALUE_CHARS) -> str | None:
    """The offending value as text for a report: ``None`` stays ``None``, long text is cut."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


@dataclass(frozen=True, slots=True)
class RowFailure:
    """Why one source invoice (or one of its rows) did not reach AppZen, and where it came from."""

    source_key: str | None
    source_location: str | None
    stage: Stage
    rule: str
    message: str
    field_path: str | None = None
    source_column: str | None = None
    value: str | None = None
    hint: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    correlation_id: str | None = None
    attempts: int = 0

    def with_key(self, source_key: str) -> RowFailure:
        """The same failure attributed to an invoice key."""
        return replace(self, source_key=source_key)


DELIVERY_STAGES: frozenset[Stage] = frozenset(
    {"extract", "mapping", "validation", "check", "appzen", "retries_exhausted"}
)
"""The stages that keep an invoice from reaching AppZen: a failure at one of them opens (or keeps
open) the invoice's entry in the open-failures ledger until it is delivered."""

FACT_CHARS = 255


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """What an AP analyst searches by, as far as the invoice could be read: its supplier
    invoice number, supplier, date, and total with currency (the total as exact decimal text)."""

    invoice_number: str | None = None
    supplier_id: str | None = None
    supplier_name: str | None = None
    invoice_date: str | None = None
    total_amount: str | None = None
    currency: str | None = None

    @classmethod
    def of(cls, invoice: Mapping[str, object]) -> InvoiceFacts:
        """The facts of an AppZen invoice as data (mapped, or partly mapped: missing parts are
        ``None``)."""
        total = invoice.get("total_amount")
        money = total if isinstance(total, Mapping) else {}
        return cls(
            invoice_number=_fact(invoice.get("invoice_number")),
            supplier_id=_fact(invoice.get("supplier_id")),
            supplier_name=_fact(invoice.get("supplier_name")),
            invoice_date=_day(_fact(invoice.get("invoice_date"))),
            total_amount=_fact(money.get("amount")),
            currency=_fact(money.get("currency")),
        )

    @classmethod
    def of_payload(cls, payload: bytes) -> InvoiceFacts:
        """The facts of an invoice's JSON payload as sent (numbers kept exact)."""
        try:
            data = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            return cls()
        return cls.of(data) if isinstance(data, Mapping) else cls()


def _day(text: str | None) -> str | None:
    """``2024-09-04T00:00:00Z`` (AppZen's date on the wire) as the day ``2024-09-04``."""
    if text is not None and len(text) >= 10 and text[4] == "-" and text[7] == "-":
        return text[:10]
    return text


def _fact(value: object) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    isoformat = getattr(value, "isoformat", None)
    text = isoformat() if callable(isoformat) else str(value)
    text = text.strip()
    return text[:FACT_CHARS] if text else None
