"""0009_supplier_invoice: each sent invoice's supplier and supplier invoice number, comparable.

``invoices.supplier_invoice`` holds the supplier id and the normalised supplier invoice number of
the payload AppZen acknowledged (:func:`pipeline.mapping.checks.supplier_invoice_key`), indexed per
mapping, so the ``duplicate_number`` check finds the same number sent before under another key.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_supplier_invoice"
down_revision = "0008_appzen_budget"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``invoices.supplier_invoice`` and its index."""
    op.add_column("invoices", sa.Column("supplier_invoice", sa.String(200)))
    op.create_index("ix_invoices_supplier_invoice", "invoices", ["mapping", "supplier_invoice"])


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
