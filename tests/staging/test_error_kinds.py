"""Transient or terminal, provoked on the three real databases: a staging failure's class comes
from the driver's code (locked, refused, terminated, deadlock, serialization, lock timeout), and
the store's whole-transaction retry (``is_retryable``) agrees with it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from pipeline.runtime.dbcodes import DbFailure, db_failure
from pipeline.staging import StagingStore, StagingTerminalError, StagingTransientError
from pipeline.staging.errors import is_retryable, staging_error
from tests import databases

JOIN_S = 30.0
"""A deadline for the threads of a provoked deadlock (the servers break one in well under 1 s)."""


def kind_of(url: str, error: sa_exc.DBAPIError) -> type[Exception]:
    return type(staging_error(url, "claiming a batch", error))


@contextmanager
def two_rows(url: str) -> Iterator[sa.Engine]:
    """An engine on ``url`` with a table ``t`` of rows 1 and 2."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
        conn.exec_driver_sql("INSERT INTO t (id, v) VALUES (1, 0), (2, 0)")
    try:
        yield engine
    finally:
        engine.dispose()


def crossing_updates(engine: sa.Engine, setup: str | None = None) -> list[BaseException]:
    """Two transactions each lock one row, then the other's: the errors the server raised."""
    first, second = engine.connect(), engine.connect()
    errors: list[BaseException] = []
    try:
        for conn, row in ((first, 1), (second, 2)):
            if setup:
                conn.exec_driver_sql(setup)
            conn.exec_driver_sql(f"UPDATE t SET v = 1 WHERE id = {row}")

        def cross(conn: sa.Connection, row: int) -> None:
            try:
                conn.exec_driver_sql(f"UPDATE t SET v = 2 WHERE id = {row}")
            except sa_exc.DBAPIError as error:
                errors.append(error)
                conn.rollback()

        threads = [
            threading.Thread(target=cross, args=(first, 2)),
            threading.Thread(target=cross, args=(second, 1)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_S)
        assert not any(thread.is_alive() for thread in threads), "the deadlock was not broken"
    finally:
        first.close()
        second.close()
    return errors


def one_error(call: Callable[[], object]) -> sa_exc.DBAPIError:
    with pytest.raises(sa_exc.DBAPIError) as caught:
        call()
    return caught.value


# --- SQLite -------------------------------------------------------------------------------------
def test_sqlite_busy_past_the_timeout_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "staging.db"
    with StagingStore.open(f"sqlite:///{path}", busy_timeout=0.2) as store:
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StagingTransientError, match="busy timeout"):
                store.start_run("nightly", "m", {}, historical=False)
        finally:
            holder.rollback()
            holder.close()


def test_sqlite_that_cannot_open_its_file_is_terminal(tmp_path: Path) -> None:
    (tmp_path / "staging.db").mkdir()  # a directory where the database file should be
    with pytest.raises(StagingTerminalError, match="unable to open database file"):
        StagingStore.open(f"sqlite:///{tmp_path / 'staging.db'}")


# --- PostgreSQL ---------------------------------------------------------------------------------
@pytest.fixture
def pg_rows() -> Iterator[tuple[str, sa.Engine]]:
    with databases.pg_schema("kinds") as url, two_rows(url) as engine:
        yield url, engine


@pytest.mark.postgres
def test_postgresql_deadlock_is_a_conflict_the_store_retries(
    pg_rows: tuple[str, sa.Engine],
) -> None:
    url, engine = pg_rows
    (error,) = crossing_updates(engine, setup="SET deadlock_timeout = '100ms'")
    assert isinstance(error, sa_exc.DBAPIError)
    assert getattr(error.orig, "sqlstate", None) == "40P01"
    assert db_failure(error) is DbFailure.CONFLICT
    assert is_retryable(error)
    assert kind_of(url, error) is StagingTransientError


@pytest.mark.postgres
def test_postgresql_serialization_failure_is_a_conflict(pg_rows: tuple[str, sa.Engine]) -> None:
    url, engine = pg_rows
    with engine.connect() as reader, engine.connect() as writer:
        reader.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader.exec_driver_sql("SELECT v FROM t WHERE id = 1").all()
        with writer.begin():
            writer.exec_driver_sql("UPDATE t SET v = 5 WHERE id = 1")
        error = one_error(lambda: reader.exec_driver_sql("UPDATE t SET v = 6 WHERE id = 1"))
    assert getattr(error.orig, "sqlstate", None) == "40001"
    assert is_retryable(error)
    assert kind_of(url, error) is StagingTransientError


@pytest.mark.postgres
def test_postgresql_lock_not_available_is_transient(pg_rows: tuple[str, sa.Engine]) -> None:
    url, engine = pg_rows
    with engine.connect() as holder, engine.connect() as other:
        holder.exec_driver_sql("SELECT v FROM t WHERE id = 1 FOR UPDATE")
        error = one_error(
            lambda: other.exec_driver_sql("SELECT v FROM t WHERE id = 1 FOR UPDATE NOWAIT")
        )
    assert db_failure(error) is DbFailure.TRANSIENT
    assert not is_retryable(error)
    assert kind_of(url, error) is StagingTransientError


@pytest.mark.postgres
def test_postgresql_terminated_backend_is_transient(pg_rows: tuple[str, sa.Engine]) -> None:
    url, engine = pg_rows
    with engine.connect() as victim, engine.connect() as admin:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        error = one_error(lambda: victim.exec_driver_sql("SELECT v FROM t"))
    assert db_failure(error) is DbFailure.TRANSIENT
    assert kind_of(url, error) is StagingTransientError


@pytest.mark.postgres
def test_postgresql_refused_connection_is_transient() -> None:
    with pytest.raises(StagingTransientError, match="is the database server running"):
        StagingStore.open("postgresql+psycopg://postgres@127.0.0.1:1/staging")


@pytest.mark.postgres
def test_postgresql_statement_errors_are_terminal(pg_rows: tuple[str, sa.Engine]) -> None:
    url, engine = pg_rows
    with engine.connect() as conn:
        missing = one_error(lambda: conn.exec_driver_sql("SELECT * FROM no_such_table"))
    with engine.connect() as conn:
        duplicate = one_error(lambda: conn.exec_driver_sql("INSERT INTO t VALUES (1, 0)"))
    for error in (missing, duplicate):
        assert db_failure(error) is DbFailure.TERMINAL
        assert kind_of(url, error) is StagingTerminalError


# --- MariaDB ------------------------------------------------------------------------------------
@pytest.fixture
def maria_rows() -> Iterator[tuple[str, sa.Engine]]:
    with databases.mariadb_database("kinds") as url, two_rows(url) as engine:
        yield url, engine


@pytest.mark.mariadb
def test_mariadb_deadlock_is_a_conflict_the_store_retries(
    maria_rows: tuple[str, sa.Engine],
) -> None:
    url, engine = maria_rows
    (error,) = crossing_updates(engine, setup="SET SESSION innodb_lock_wait_timeout = 20")
    assert isinstance(error, sa_exc.DBAPIError)
    assert getattr(error.orig, "args", ())[:1] == (1213,)
    assert is_retryable(error)
    assert kind_of(url, error) is StagingTransientError


@pytest.mark.mariadb
def test_mariadb_lock_wait_timeout_is_transient(maria_rows: tuple[str, sa.Engine]) -> None:
    url, engine = maria_rows
    with engine.connect() as holder, engine.connect() as waiter:
        holder.exec_driver_sql("UPDATE t SET v = 1 WHERE id = 1")
        waiter.exec_driver_sql("SET SESSION innodb_lock_wait_timeout = 1")
        error = one_error(lambda: waiter.exec_driver_sql("UPDATE t SET v = 2 WHERE id = 1"))
    assert getattr(error.orig, "args", ())[:1] == (1205,)
    assert db_failure(error) is DbFailure.TRANSIENT
    assert kind_of(url, error) is StagingTransientError


@pytest.mark.mariadb
@pytest.mark.parametrize(
    ("url", "kind", "words"),
    [
        ("mysql+pymysql://root@127.0.0.1:1/staging", StagingTransientError, "server running"),
        ("mysql+pymysql://nobody:x@127.0.0.1:3306/test", StagingTerminalError, "user and password"),
        ("mysql+pymysql://root@127.0.0.1:3306/no_such_db_h2", StagingTerminalError, "create the"),
    ],
    ids=["refused", "access-denied", "unknown-database"],
)
def test_mariadb_connection_failures_by_code(url: str, kind: type[Exception], words: str) -> None:
    with pytest.raises(kind, match=words):
        StagingStore.open(url)
