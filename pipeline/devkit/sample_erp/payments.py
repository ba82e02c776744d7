"""Payments in the sample ERP: the status change that does not move the invoice's ``updated_at``.

Many ERPs keep payment status in tables of their own; the sample ERP's ``erp_payment`` is one.
Recording a payment makes the invoice ``PAID`` in ``sql/sample_erp/extract.sql`` and
``sql/sample_erp/status.sql`` alike, and leaves ``erp_invoice.updated_at`` as it was: an
incremental sync does not see it, the mapping's status read does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from pipeline.devkit.sample_erp.generate import BAD_DATES, UNKNOWN_CURRENCY
from pipeline.devkit.sample_erp.schema import engine_for, invoice, latest_change, payment


@dataclass(frozen=True, slots=True)
class PaymentReport:
    """What :func:`pay` recorded: the invoices now paid, all at ``recorded_at``."""

    recorded_at: datetime
    document_nos: tuple[str, ...]


def pay(url: str, *, count: int = 5, seed: int = 13, at: datetime | None = None) -> PaymentReport:
    """Record a payment of ``count`` seeded unpaid invoices that the ERP took and AppZen can have
    (no ERP error, not dirty, not PAID yet), at ``at`` (default: the latest change + 1 minute);
    ``erp_invoice`` is not touched."""
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            paid = sa.select(payment.c.invoice_key)
            unpaid = sa.select(invoice.c.invoice_key, invoice.c.total_amount).where(
                invoice.c.erp_error_message.is_(None),
                invoice.c.supplier_id.is_not(None),
                invoice.c.currency != UNKNOWN_CURRENCY,
                invoice.c.invoice_date_text.not_in(BAD_DATES),
                invoice.c.status != "PAID",
                invoice.c.invoice_key.not_in(paid),
            )
            rows = sorted(connection.execute(unpaid).all())
            rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not a secret
            chosen = sorted(rng.sample(rows, min(count, len(rows))))
            stamp = at or (latest_change(connection) or datetime(2000, 1, 1)) + timedelta(minutes=1)
            first = connection.execute(sa.select(sa.func.max(payment.c.payment_id))).scalar() or 0
            records = [
                {
                    "payment_id": first + n,
                    "invoice_key": key,
                    "amount": total,
                    "paid_on": stamp.date(),
                    "recorded_at": stamp,
                }
                for n, (key, total) in enumerate(chosen, start=1)
            ]
            if records:
                connection.execute(payment.insert(), records)
            keys = [key for key, _ in chosen]
            numbers = sa.select(invoice.c.document_no).where(invoice.c.invoice_key.in_(keys))
            documents = tuple(sorted(connection.execute(numbers).scalars()))
    finally:
        engine.dispose()
    return PaymentReport(stamp, documents)
