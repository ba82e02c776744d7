"""Throwaway databases on the machine's servers: a PostgreSQL schema or a MariaDB database per use.

The servers are part of the test environment (``make test`` starts them): one that cannot be
reached fails the test with the reason, it is never skipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"

DIALECTS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]
"""Parametrize a fixture or test over the three databases."""


def admin_engine(url: str) -> sa.Engine:
    """An autocommit engine on a server's admin URL; fails the test if the server is down."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        engine.dispose()
        pytest.fail(
            f"database server not reachable at {url} ({error.orig}); "
            "start it with scripts/ensure-services.sh (make test does)"
        )
    return engine


@contextmanager
def pg_schema(prefix: str = "test") -> Iterator[str]:
    """A new, empty PostgreSQL schema (dropped afterwards); the URL selecting it."""
    admin = admin_engine(PG_ADMIN)
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


@contextmanager
def mariadb_database(prefix: str = "test") -> Iterator[str]:
    """A new, empty MariaDB database (utf8mb4, binary collation; dropped afterwards); its URL."""
    admin = admin_engine(MARIADB_ADMIN)
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield MARIADB_ADMIN.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()


@contextmanager
def empty_database(dialect: str, folder: Path, prefix: str = "test") -> Iterator[str]:
    """The URL of a new empty database of ``dialect`` (SQLite: a file in ``folder``)."""
    if dialect == "sqlite":
        yield f"sqlite:///{folder / f'{prefix}.db'}"
    elif dialect == "postgresql":
        with pg_schema(prefix) as url:
            yield url
    else:
        with mariadb_database(prefix) as url:
            yield url
