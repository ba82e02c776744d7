"""0005_alembic: Alembic keeps the schema version from here on (``alembic_version``).

Records version 5 in the pre-Alembic ``schema_migrations``: releases before Alembic know versions
1-4 only, so they refuse this database ("upgrade appzen-etl, never downgrade") instead of taking
it for an empty one and running their 001 over it. No schema change.
"""

from __future__ import annotations

from pipeline.staging import legacy

revision = "0005_alembic"
down_revision = "0004_push_in_doubt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Record the guard row."""
    legacy.record(legacy.GUARD_VERSION, "alembic")


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
