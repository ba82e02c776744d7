"""0011_appzen_rate: the rate AppZen's 429s taught the last run, remembered for the next.

``appzen_rate`` holds one row per account (a fingerprint of the AppZen endpoint and customer id,
never a key): the rate the last 429 came at, the rate the run ended at, and when.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging.coltypes import MYSQL_TABLE, UtcDateTime

revision = "0011_appzen_rate"
down_revision = "0010_run_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``appzen_rate``."""
    op.create_table(
        "appzen_rate",
        sa.Column("account", sa.String(64), primary_key=True),
        sa.Column("quota", sa.Float(), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
