"""Staging fixtures: a store on SQLite, PostgreSQL and MariaDB, each in its own database/schema."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.staging import StagingStore
from pipeline.staging.tables import failures, invoices, runs
from tests.staging.helpers import FakeClock

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"

BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


def _admin(url: str) -> sa.Engine:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        engine.dispose()
        pytest.skip(f"database server not reachable at {url}: {error.orig}")
    return engine


@contextmanager
def pg_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema (dropped afterwards); the URL selecting it."""
    admin = _admin(PG_ADMIN)
    name = f"staging_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{PG_ADMIN}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A new, empty MariaDB database (dropped afterwards); its URL."""
    admin = _admin(MARIADB_ADMIN)
    name = f"staging_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield MARIADB_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE `{name}`")
        admin.dispose()


@contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'state' / 'staging.db'}"
    elif backend == "postgresql":
        with pg_schema() as url:
            yield url
    else:
        with mariadb_database() as url:
            yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on SQLite, PostgreSQL and MariaDB."""
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for migration tests."""
    with empty_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def _postgresql_session_url() -> Iterator[str]:
    with pg_schema() as url:
        StagingStore.open(url).close()
        yield url


@pytest.fixture(scope="session")
def _mariadb_session_url() -> Iterator[str]:
    with mariadb_database() as url:
        StagingStore.open(url).close()
        yield url


@pytest.fixture
def clock() -> FakeClock:
    """The store's clock."""
    return FakeClock()


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated database with no rows (servers: one per session, emptied before each test)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'staging.db'}"
    url = str(request.getfixturevalue(f"_{backend}_session_url"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in (failures, invoices, runs):
            conn.execute(sa.delete(table))
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[StagingStore]:
    """An open store on a clean database, with a fake clock."""
    opened = StagingStore.open(store_url, now=clock)
    yield opened
    opened.close()
