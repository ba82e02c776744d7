"""The pre-Alembic ``schema_migrations`` bookkeeping: recognising a database it migrated, and the
rows the first five Alembic revisions write so that every database ends with the same history.

Releases before Alembic applied ``sql/staging/<dialect>/NNN_<name>.sql`` files and recorded each
as a ``schema_migrations`` row (versions 1-4). Revisions ``0001``-``0004`` are those files, one
for one: a database with that table and no ``alembic_version`` is stamped at the revision of its
highest version and upgraded from there. Revision ``0005`` records version 5, which those
releases do not know, so they refuse the database with their own "upgrade appzen-etl" message
instead of re-running their 001 over it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from pipeline.staging.coltypes import UtcDateTime

REVISIONS = {
    1: "0001_initial",
    2: "0002_push_pending",
    3: "0003_outcomes",
    4: "0004_push_in_doubt",
}
"""Legacy version → the Alembic revision that reproduces it (same schema, same name)."""
GUARD_VERSION = 5

_table = sa.table(
    "schema_migrations",
    sa.column("version", sa.Integer()),
    sa.column("name", sa.String(200)),
    sa.column("applied_at", UtcDateTime()),
)


def legacy_version(conn: Connection) -> int | None:
    """The highest version in ``schema_migrations``; ``None`` when the table is absent, 0 when
    it is empty (a 001 interrupted on MySQL, where DDL is not transactional)."""
    if not sa.inspect(conn).has_table("schema_migrations"):
        return None
    version = conn.execute(sa.select(sa.func.max(_table.c.version))).scalar()
    return int(version or 0)


def record(version: int, name: str) -> None:
    """From inside a revision: the ``schema_migrations`` row the legacy runner wrote for it."""
    op.bulk_insert(_table, [{"version": version, "name": name, "applied_at": datetime.now(UTC)}])
