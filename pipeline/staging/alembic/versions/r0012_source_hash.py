"""0012_source_hash: the hash of the source rows (and the mapping) each staged payload came from.

``invoices.source_hash`` is written with ``payload_hash`` by every claim: the hash of the invoice's
source rows as read, with the mapping's identity (:mod:`pipeline.mapping.sourcehash`). A row that
is ``sent`` with ``payload_hash = acked_hash`` and the same source hash as a new read maps to the
acknowledged payload: a rerun skips mapping it. Existing rows get NULL (never equal): their first
rerun maps them as before and writes the hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_source_hash"
down_revision = "0011_appzen_rate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``invoices.source_hash`` (nullable, no index: read by the primary key)."""
    op.add_column("invoices", sa.Column("source_hash", sa.String(128)))


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
