"""Dialect-aware inserts that leave an existing row alone: the race-free "create if missing".

Select-then-insert races between two workers (both find nothing, the second insert violates the
key); ``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite) or ``INSERT IGNORE`` (MariaDB)
makes the second a no-op, after which both read the row and update it under its row lock.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite


@functools.cache
def insert_missing(table: sa.Table, dialect: str) -> sa.Insert:
    """An INSERT into ``table`` that does nothing for a row whose key exists already."""
    module: Any = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect, mysql)
    if module is mysql:
        return sa.insert(table).prefix_with("IGNORE")
    return module.insert(table).on_conflict_do_nothing()  # type: ignore[no-any-return]
