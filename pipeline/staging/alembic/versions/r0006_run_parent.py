"""0006_run_parent: a run started under another run names it (a backfill's partitions).

``runs.parent_run_id`` holds the id of the backfill run a partition belongs to, so a backfill finds
its own partitions by id, even while another backfill of the same mapping runs.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging.coltypes import RowId

revision = "0006_run_parent"
down_revision = "0005_alembic"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``runs.parent_run_id`` and its index."""
    op.add_column("runs", sa.Column("parent_run_id", RowId))
    op.create_index("ix_runs_parent", "runs", ["parent_run_id", "id"])


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
