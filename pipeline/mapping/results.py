"""What the engine yields per invoice: a :class:`MappedInvoice` to send or a
:class:`RejectedInvoice` with every reason it cannot be sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from pipeline.appzen.models import ErrorData, Invoice
from pipeline.extract.base import Chunk
from pipeline.failures import InvoiceFacts, RowFailure


@dataclass(frozen=True, slots=True)
class MappedInvoice:
    """An invoice ready to send: ``payload`` is its exact bytes on the wire (validated)."""

    key: str
    payload: bytes
    payload_hash: str
    location: str
    erp_status: str | None
    erp_error: ErrorData | None
    watermark: object | None
    warnings: tuple[RowFailure, ...] = ()
    supplier_invoice: str | None = None
    """The supplier and normalised supplier invoice number
    (:func:`pipeline.mapping.checks.supplier_invoice_key`): staged with the ack, so a later run's
    ``duplicate_number`` check finds the number sent before under another key."""
    """Pre-flight checks at level ``warning`` that found something (stage ``warning``): the
    invoice is sent, and these go to the run's report."""
    source_hash: str | None = None
    """The hash of its source rows and the mapping (:mod:`pipeline.mapping.sourcehash`) when the
    run computes it: staged with the payload hash, so the next run can skip mapping it."""

    @property
    def invoice(self) -> Invoice:
        """The invoice as the wire model, read back from ``payload`` on each access (numbers as
        exact decimals, so writing it again gives the same bytes).

        Results keep only the bytes: a batch in flight then holds no per-invoice containers for
        the garbage collector to scan again and again (a third of a rerun's time otherwise)."""
        data = json.loads(self.payload, parse_float=Decimal, parse_int=Decimal)
        return Invoice.model_validate(data)

    @property
    def facts(self) -> InvoiceFacts:
        """The invoice's number, supplier, date and total, read from ``payload``."""
        return InvoiceFacts.of_payload(self.payload)


@dataclass(frozen=True, slots=True)
class RejectedInvoice:
    """An invoice (or rows) that cannot be sent, with every reason."""

    key: str | None
    location: str
    failures: tuple[RowFailure, ...]
    facts: InvoiceFacts | None = None
    """The invoice's number, supplier, date and total as far as they could be mapped."""


Result = MappedInvoice | RejectedInvoice
"""One engine result."""


@dataclass(frozen=True, slots=True)
class UnchangedSource:
    """An invoice whose source rows, read with the same mapping, are those its acknowledged
    payload came from (same source hash): not mapped again, nothing to stage or send."""

    key: str
    source_hash: str
    watermark: object | None
    at: tuple[Chunk, int]
    """The chunk (its locator: no rows) and the row its first row is at."""

    @property
    def location(self) -> str:
        """Where its first row came from (``sql/x.sql row 17``), named when asked."""
        chunk, row = self.at
        return chunk.location(row)


Streamed = Result | UnchangedSource
"""What a run that skips unchanged sources yields per invoice."""
