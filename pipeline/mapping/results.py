"""What the engine yields per invoice: a :class:`MappedInvoice` to send or a
:class:`RejectedInvoice` with every reason it cannot be sent."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.appzen.models import ErrorData, Invoice
from pipeline.failures import RowFailure


@dataclass(frozen=True, slots=True)
class MappedInvoice:
    """An invoice ready to send."""

    key: str
    invoice: Invoice
    payload: bytes
    payload_hash: str
    location: str
    erp_status: str | None
    erp_error: ErrorData | None
    watermark: object | None


@dataclass(frozen=True, slots=True)
class RejectedInvoice:
    """An invoice (or rows) that cannot be sent, with every reason."""

    key: str | None
    location: str
    failures: tuple[RowFailure, ...]


Result = MappedInvoice | RejectedInvoice
"""One engine result."""
