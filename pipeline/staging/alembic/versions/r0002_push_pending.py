"""0002_push_pending: status-sync candidates without a table scan (``002_push_pending.sql``).

A flag kept equal to (erp_status, erp_error) IS DISTINCT FROM (pushed_status, pushed_error), set
for the rows already there, and an index to page it. On MySQL the column and its index are one
ALTER (DDL is not transactional there: it applies whole or not at all).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging import legacy

revision = "0002_push_pending"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_STATUS_COLUMNS = ("erp_status", "erp_error", "pushed_status", "pushed_error")


def upgrade() -> None:
    """Add ``invoices.push_pending``, fill it, index it."""
    if op.get_bind().dialect.name in {"mysql", "mariadb"}:
        op.execute(
            "ALTER TABLE invoices ADD COLUMN push_pending BOOL NOT NULL DEFAULT FALSE, "
            "ADD INDEX ix_invoices_push (mapping, push_pending, invoice_id)"
        )
    else:
        op.add_column(
            "invoices",
            sa.Column("push_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
        op.create_index("ix_invoices_push", "invoices", ["mapping", "push_pending", "invoice_id"])
    invoices = sa.table(
        "invoices",
        *(sa.column(name, sa.String()) for name in _STATUS_COLUMNS),
        sa.column("push_pending", sa.Boolean()),
    )
    c = invoices.c
    op.execute(
        invoices.update().values(
            push_pending=sa.or_(
                c.erp_status.is_distinct_from(c.pushed_status),
                c.erp_error.is_distinct_from(c.pushed_error),
            )
        )
    )
    legacy.record(2, "push_pending")


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
