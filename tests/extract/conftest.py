"""Extract fixtures: empty databases on SQLite, PostgreSQL (own schema) and MariaDB (own database),
and the sample ERP generated into one per dialect for the session."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, generate
from tests import databases
from tests.databases import DIALECTS

REPO = Path(__file__).resolve().parents[2]
EXTRACT_SQL = Path("sql/sample_erp/extract.sql")

MakeDatabase = Callable[[str], str]


@contextmanager
def _pg_schema() -> Iterator[str]:
    with databases.pg_schema("extract_test") as url:
        yield url


@contextmanager
def _mariadb_database() -> Iterator[str]:
    with databases.mariadb_database("extract_test") as url:
        yield url


@pytest.fixture(scope="session")
def make_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeDatabase]:
    """``make_database(dialect)`` → the URL of a new empty database, dropped after the session."""
    with ExitStack() as stack:

        def make(dialect: str) -> str:
            if dialect == "sqlite":
                folder = tmp_path_factory.mktemp("erp")
                sqlite3.connect(folder / "erp.db").close()  # empty, and there
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
