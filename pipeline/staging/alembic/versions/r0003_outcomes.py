"""0003_outcomes: AppZen audit outcomes and write-backs, a uuid index (``003_outcomes.sql``).

``audit_outcomes``: AppZen's audit outcome of each invoice (polled or imported); ``writebacks``:
what the ERP-side systems (merchant platform notes, CRM.COM rejections) were told; an index on
``invoices.uuid`` so search hits find their invoice.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging import legacy
from pipeline.staging.coltypes import MYSQL_TABLE, LongText, UtcDateTime

revision = "0003_outcomes"
down_revision = "0002_push_pending"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``audit_outcomes`` and ``writebacks``; index ``invoices.uuid``."""
    op.create_table(
        "audit_outcomes",
        sa.Column("mapping", sa.String(200), primary_key=True),
        sa.Column("invoice_id", sa.String(255), primary_key=True),
        sa.Column("uuid", sa.String(100)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("appzen_status", sa.String(32)),
        sa.Column("risk_level", sa.String(32)),
        sa.Column("reason", sa.String(255)),
        sa.Column("message", LongText),
        sa.Column("rules", LongText),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("appzen_updated_at", UtcDateTime()),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE,
    )
    op.create_index(
        "ix_audit_outcomes_outcome", "audit_outcomes", ["mapping", "outcome", "invoice_id"]
    )
    op.create_table(
        "writebacks",
        sa.Column("mapping", sa.String(200), primary_key=True),
        sa.Column("invoice_id", sa.String(255), primary_key=True),
        sa.Column("target", sa.String(16), primary_key=True),
        sa.Column("uuid", sa.String(100)),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(255)),
        sa.Column("message", LongText),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE,
    )
    op.create_index("ix_invoices_uuid", "invoices", ["uuid"])
    legacy.record(3, "outcomes")


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
