"""Staging fixtures: a store on SQLite, PostgreSQL and MariaDB, each in its own database/schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.staging import StagingStore
from pipeline.staging.tables import (
    appzen_budget,
    appzen_rate,
    failure_ledger,
    failures,
    invoices,
    runs,
)
from tests import databases
from tests.databases import DIALECTS
from tests.staging.helpers import FakeClock

BACKENDS = DIALECTS


@contextmanager
def pg_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema for staging tests."""
    with databases.pg_schema("staging_test") as url:
        yield url


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A new, empty MariaDB database for staging tests."""
    with databases.mariadb_database("staging_test") as url:
        yield url


@contextmanager
def empty_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of ``backend``."""
    folder = tmp_path / "state"
    folder.mkdir(exist_ok=True)
    with databases.empty_database(backend, folder, "staging") as url:
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
        for table in (failure_ledger, failures, invoices, runs, appzen_budget, appzen_rate):
            conn.execute(sa.delete(table))
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[StagingStore]:
    """An open store on a clean database, with a fake clock."""
    opened = StagingStore.open(store_url, now=clock)
    yield opened
    opened.close()
