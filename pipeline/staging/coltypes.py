"""Column types of the staging schema, shared by ``tables.py`` and the Alembic revisions.

The revisions are frozen history: they use these types (stable: how a timestamp, a long text or a
row id is stored per dialect) but never the tables of ``tables.py`` (which move on).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime stored as a naive UTC timestamp (microseconds) on every dialect."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[datetime]:
        if dialect.name in {"mysql", "mariadb"}:
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"staging timestamps must be timezone-aware (got naive {value})")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
"""Payloads, messages and JSON: MySQL's TEXT stops at 64 KiB, so LONGTEXT there."""
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""Surrogate keys: BIGINT, except SQLite where only INTEGER PRIMARY KEY is the rowid."""

MYSQL_TABLE: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
"""Table options on MySQL / MariaDB: InnoDB, utf8mb4 with binary collation (keys are
case-sensitive, as in the ERP). Ignored by the other dialects."""
