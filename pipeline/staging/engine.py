"""Engines for the staging database: per-dialect connection settings (SQLite WAL + busy timeout).

SQLite: WAL journal (readers never block the writer), ``synchronous=FULL`` (a committed ack
survives a power cut), foreign keys on, and a busy timeout so two processes on one file wait for
each other (``?timeout=SECONDS`` in the URL overrides the one passed in). Write transactions
start with ``BEGIN IMMEDIATE``: they take the write lock up front, so a transaction never fails
half-way on a lock (a deferred one cannot wait once it has read).
PostgreSQL and MySQL run at READ COMMITTED; claims rely on row locks and conditional updates.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from pipeline.runtime.dbcodes import DbFailure, db_failure
from pipeline.staging.errors import StagingTerminalError, describe_url

READ_ONLY = "staging_read_only"
"""Connection execution option: a read-only transaction (SQLite starts it DEFERRED)."""
SUPPORTED = ("sqlite", "postgresql", "mysql")
CONNECT_TIMEOUT_S = 10


def backend_of(url: str) -> str:
    """``sqlite`` | ``postgresql`` | ``mysql`` (MariaDB included) for a SQLAlchemy URL."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    backend = "mysql" if backend == "mariadb" else backend
    if backend not in SUPPORTED:
        raise StagingTerminalError(
            f"staging database {describe_url(url)}: dialect {backend!r} is not supported; "
            f"use one of {', '.join(SUPPORTED)}"
        )
    return backend


def create_staging_engine(url: str, busy_timeout: float) -> Engine:
    """An engine for ``url`` with the staging store's connection settings (no I/O yet)."""
    backend = backend_of(url)
    parsed = _parse(url)
    try:
        if backend == "sqlite":
            return _sqlite_engine(url, parsed, busy_timeout)
        if backend == "postgresql":
            return sa.create_engine(
                parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}
            )
        return sa.create_engine(
            parsed,
            pool_pre_ping=True,
            isolation_level="READ COMMITTED",
            connect_args={"charset": "utf8mb4", "connect_timeout": CONNECT_TIMEOUT_S},
        )
    except (sa_exc.ArgumentError, ImportError) as error:
        raise StagingTerminalError(
            f"staging database {describe_url(url)}: cannot build an engine "
            f"({type(error).__name__}); expected a URL such as sqlite:///.state/staging.db or "
            "postgresql+psycopg://user:password@host:5432/db"
        ) from None


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except sa_exc.ArgumentError:
        raise StagingTerminalError(
            f"staging database {describe_url(url)}: not a database URL; expected e.g. "
            "sqlite:///.state/staging.db, postgresql+psycopg://user:password@host:5432/db or "
            "mysql+pymysql://user:password@host:3306/db"
        ) from None


def _sqlite_engine(url: str, parsed: URL, busy_timeout: float) -> Engine:
    database = parsed.database or ""
    in_memory = database in {"", ":memory:"} or database.startswith("file::memory:")
    if not in_memory and not database.startswith("file:"):
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StagingTerminalError(
                f"staging database {describe_url(url)}: cannot create its directory "
                f"({error.strerror}); choose a writable path in STAGING_DATABASE_URL"
            ) from None
    timeout = _timeout(url, parsed, busy_timeout)
    engine = sa.create_engine(parsed, connect_args={"timeout": timeout})
    _install_sqlite_events(engine, wal=not in_memory, timeout=timeout)
    return engine


def _timeout(url: str, parsed: URL, default: float) -> float:
    """The busy timeout: the URL's ``?timeout=`` when given, else ``default``."""
    given = parsed.query.get("timeout")
    if given is None:
        return default
    try:
        seconds = float(given if isinstance(given, str) else given[-1])
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise StagingTerminalError(
            f"staging database {describe_url(url)}: ?timeout={given} is not a number of seconds; "
            "write e.g. sqlite:///.state/staging.db?timeout=30"
        )
    return seconds


def _enter_wal(cursor: Any, timeout: float) -> None:
    """Switch the file to WAL. SQLite answers "database is locked" at once, without waiting on
    the busy timeout, when two connections make the switch together (two processes opening a new
    staging file): poll until it is WAL or the busy timeout has passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if db_failure(error) is not DbFailure.TRANSIENT or time.monotonic() > deadline:
                raise  # SQLITE_BUSY / SQLITE_LOCKED by its code; anything else at once
            time.sleep(0.02)
        else:
            return


def _install_sqlite_events(engine: Engine, *, wal: bool, timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            if wal:
                _enter_wal(cursor, timeout)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")
