"""0004_push_in_doubt: a status push whose answer was never recorded (``004_push_in_doubt.sql``).

Status-sync writes the (status, error) it is about to push here before the requests go out, and
clears it when it records the outcome. If the process dies in between, the next status-sync finds
the same value still here and counts its push as ``repushed_after_crash``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging import legacy
from pipeline.staging.coltypes import LongText

revision = "0004_push_in_doubt"
down_revision = "0003_outcomes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``invoices.push_in_doubt``."""
    op.add_column("invoices", sa.Column("push_in_doubt", LongText))
    legacy.record(4, "push_in_doubt")


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
