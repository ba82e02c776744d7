"""Extract fixtures: empty databases on SQLite, PostgreSQL (own schema) and MariaDB (own database),
and the sample ERP generated into one per dialect for the session."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.sample_erp import GenerationReport, generate

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
REPO = Path(__file__).resolve().parents[2]
EXTRACT_SQL = Path("sql/sample_erp/extract.sql")

DIALECTS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]

MakeDatabase = Callable[[str], str]


def _admin(url: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        engine.dispose()
        pytest.skip(f"database server not reachable at {url}: {error.orig}")
    return engine


@contextmanager
def _pg_schema() -> Iterator[str]:
    admin = _admin(PG_ADMIN)
    name = f"extract_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


@contextmanager
def _mariadb_database() -> Iterator[str]:
    admin = _admin(MARIADB_ADMIN)
    name = f"extract_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"{MARIADB_ADMIN.rsplit('/', 1)[0]}/{name}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()


@pytest.fixture(scope="session")
def make_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeDatabase]:
    """``make_database(dialect)`` → the URL of a new empty database, dropped after the session."""
    with ExitStack() as stack:

        def make(dialect: str) -> str:
            if dialect == "sqlite":
                folder = tmp_path_factory.mktemp("erp")
                return f"sqlite:///{folder / 'erp.db'}"
            factory = _pg_schema if dialect == "postgresql" else _mariadb_database
            return stack.enter_context(factory())

        yield make


@pytest.fixture(scope="session", params=DIALECTS)
def sample_erp(
    request: pytest.FixtureRequest, make_database: MakeDatabase
) -> tuple[str, GenerationReport]:
    """The sample ERP (60 invoices, read-only for tests) on each dialect: ``(url, report)``."""
    url = make_database(request.param)
    return url, generate(url, invoices=60, seed=3, dirty_share=0.1)
