"""0008_appzen_budget: the daily AppZen request budget, counted across runs, workers and flows.

``appzen_budget`` holds the requests sent per AppZen day (``YYYY-MM-DD`` in the budget's time
zone), credentials fingerprint (never the secret) and flow; flow ``*`` is the day's total.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging.coltypes import MYSQL_TABLE, UtcDateTime

revision = "0008_appzen_budget"
down_revision = "0007_failure_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``appzen_budget``."""
    op.create_table(
        "appzen_budget",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("flow", sa.String(32), primary_key=True),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
