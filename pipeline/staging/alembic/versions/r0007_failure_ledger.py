"""0007_failure_ledger: the open-failures ledger, one entry per invoice that failed to reach AppZen.

``failure_ledger`` keeps an invoice from its first failure (``open``) until it is delivered
(``delivered``), gone from the source (``gone``), or dismissed with a reason and by whom
(``dismissed``); with what an AP analyst searches by (invoice number, supplier, date, total and
currency), the stage, when it was first and last seen and in how many runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging.coltypes import MYSQL_TABLE, LongText, RowId, UtcDateTime

revision = "0007_failure_ledger"
down_revision = "0006_run_parent"
branch_labels = None
depends_on = None

FACT_CHARS = 255  # pipeline.failures.FACT_CHARS when this revision was written


def upgrade() -> None:
    """Create ``failure_ledger`` and its index."""
    op.create_table(
        "failure_ledger",
        sa.Column("mapping", sa.String(200), primary_key=True),
        sa.Column("invoice_id", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("invoice_number", sa.String(FACT_CHARS)),
        sa.Column("supplier_id", sa.String(FACT_CHARS)),
        sa.Column("supplier_name", sa.String(FACT_CHARS)),
        sa.Column("invoice_date", sa.String(FACT_CHARS)),
        sa.Column("total_amount", sa.String(FACT_CHARS)),
        sa.Column("currency", sa.String(FACT_CHARS)),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.Column("first_run_id", RowId, nullable=False),
        sa.Column("last_run_id", RowId, nullable=False),
        sa.Column("runs_seen", sa.Integer, nullable=False),
        sa.Column("closed_at", UtcDateTime()),
        sa.Column("closed_run_id", RowId),
        sa.Column("dismissed_by", sa.String(200)),
        sa.Column("dismissed_reason", LongText),
        **MYSQL_TABLE,
    )
    op.create_index("ix_failure_ledger_state", "failure_ledger", ["mapping", "state", "invoice_id"])


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
