"""The sample ERP: a small accounts-payable database (any SQLAlchemy dialect) for demo and tests.

Tables (:mod:`.schema`): ``erp_supplier``, ``erp_invoice`` (headers; ``updated_at`` drives
incremental extraction), ``erp_invoice_line`` and ``erp_payment`` (a payment makes its invoice
``PAID`` without moving ``updated_at``: :func:`pay`). ``sql/sample_erp/schema.sql`` is the reference
DDL and ``sql/sample_erp/extract.sql`` the extraction query (one row per invoice line).

Amounts are exact: ``line_amount`` is quantity times unit price, a line's ``vat_amount`` is rounded
half up to the cent, and a header's ``total_amount = net_amount + vat_amount``, both sums of its
lines. Timestamps are naive UTC, whole seconds. The invoice date lives in a legacy text column
(``invoice_date_text``, ``DD.MM.YYYY``), as many old ERPs keep it; ``posting_date`` is a real date.

:func:`generate` writes ``dirty_share`` dirty invoices, named in its :class:`GenerationReport`; the
mapping must reject exactly those: ``missing_supplier`` (``supplier_id`` NULL), ``bad_date`` (an
impossible ``invoice_date_text`` such as ``31.02.2021``) and ``unknown_currency`` (``XXY``).
Non-ASCII names are *not* dirty: they must pass. Invoices with ``erp_error_*`` set are clean too:
the ERP failed to take them (status-sync ``ERROR``). :func:`touch` changes a few invoices later,
for incremental runs; :func:`pay` records payments, which only the mapping's status read sees.
"""

from __future__ import annotations

from pipeline.devkit.sample_erp.catalog import STATUSES, line_amounts
from pipeline.devkit.sample_erp.generate import (
    BAD_DATES,
    DIRTY_REASONS,
    UNKNOWN_CURRENCY,
    DirtyInvoice,
    DirtyReason,
    GenerationReport,
    TouchedInvoice,
    TouchReport,
    generate,
    touch,
)
from pipeline.devkit.sample_erp.payments import PaymentReport, pay
from pipeline.devkit.sample_erp.schema import (
    ExactDecimal,
    create_schema,
    drop_schema,
    invoice,
    invoice_line,
    metadata,
    payment,
    supplier,
)

__all__ = [
    "BAD_DATES",
    "DIRTY_REASONS",
    "STATUSES",
    "UNKNOWN_CURRENCY",
    "DirtyInvoice",
    "DirtyReason",
    "ExactDecimal",
    "GenerationReport",
    "PaymentReport",
    "TouchReport",
    "TouchedInvoice",
    "create_schema",
    "drop_schema",
    "generate",
    "invoice",
    "invoice_line",
    "line_amounts",
    "metadata",
    "pay",
    "payment",
    "supplier",
    "touch",
]
