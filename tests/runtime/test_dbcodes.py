"""db_failure: every driver code the brief names, as the three drivers raise it (bare and wrapped
by SQLAlchemy); the message text never decides. Real databases: tests/staging/test_error_kinds.py.
"""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg.errors
import pymysql  # type: ignore[import-untyped]  # no stubs in the lock
import pytest
from sqlalchemy import exc as sa_exc

from pipeline.runtime.dbcodes import DbFailure, db_failure

CONFLICT, TRANSIENT, TERMINAL = DbFailure.CONFLICT, DbFailure.TRANSIENT, DbFailure.TERMINAL


def sqlite_error(code: int, text: str = "database is locked") -> sqlite3.Error:
    error = sqlite3.OperationalError(text)
    error.sqlite_errorcode = code
    return error


def pg_error(sqlstate: str, text: str = "boom") -> psycopg.Error:
    return psycopg.errors.lookup(sqlstate)(text)


CASES: list[tuple[str, BaseException, DbFailure]] = [
    ("sqlite busy", sqlite_error(5), TRANSIENT),
    ("sqlite busy (extended: snapshot)", sqlite_error(517), TRANSIENT),
    ("sqlite locked (shared cache)", sqlite_error(6), TRANSIENT),
    ("sqlite disk I/O", sqlite_error(10, "disk I/O error"), TERMINAL),
    ("sqlite full", sqlite_error(13, "database or disk is full"), TERMINAL),
    ("sqlite cannot open", sqlite_error(14, "unable to open database file"), TERMINAL),
    ("sqlite read-only", sqlite_error(8, "attempt to write a readonly database"), TERMINAL),
    ("sqlite code 1 saying locked", sqlite_error(1, "database is locked"), TERMINAL),
    ("pg serialization failure", pg_error("40001"), CONFLICT),
    ("pg deadlock", pg_error("40P01"), CONFLICT),
    ("pg connection failure", pg_error("08006"), TRANSIENT),
    ("pg cannot establish", pg_error("08001"), TRANSIENT),
    ("pg too many connections", pg_error("53300"), TRANSIENT),
    ("pg lock not available", pg_error("55P03"), TRANSIENT),
    ("pg admin shutdown", pg_error("57P01"), TRANSIENT),
    ("pg crash shutdown", pg_error("57P02"), TRANSIENT),
    ("pg cannot connect now", pg_error("57P03"), TRANSIENT),
    ("pg disk full", pg_error("53100", "could not extend file"), TERMINAL),
    ("pg bad password", pg_error("28P01", "connection refused"), TERMINAL),
    ("pg missing table", pg_error("42P01", "terminating connection"), TERMINAL),
    ("pg no code: a failed connection attempt", psycopg.OperationalError("failed"), TRANSIENT),
    ("pg no code, not operational", psycopg.InterfaceError("connection is closed"), TERMINAL),
    ("mysql deadlock", pymysql.err.OperationalError(1213, "Deadlock found"), CONFLICT),
    ("mysql lock wait timeout", pymysql.err.OperationalError(1205, "Lock wait"), TRANSIENT),
    ("mysql too many connections", pymysql.err.OperationalError(1040, "Too many"), TRANSIENT),
    ("mysql shutdown", pymysql.err.OperationalError(1053, "Server shutdown"), TRANSIENT),
    ("mysql socket", pymysql.err.OperationalError(2002, "Can't connect"), TRANSIENT),
    ("mysql refused", pymysql.err.OperationalError(2003, "Can't connect"), TRANSIENT),
    ("mysql gone away", pymysql.err.OperationalError(2006, "gone away"), TRANSIENT),
    ("mysql lost", pymysql.err.OperationalError(2013, "Lost connection"), TRANSIENT),
    ("mysql access denied", pymysql.err.OperationalError(1045, "Access denied"), TERMINAL),
    ("mysql unknown database", pymysql.err.OperationalError(1049, "Unknown database"), TERMINAL),
    ("mysql full", pymysql.err.OperationalError(1114, "The table is full"), TERMINAL),
    ("not a driver error", ValueError("database is locked"), TERMINAL),
]


@pytest.mark.parametrize(("error", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_drivers_code_decides(error: BaseException, expected: DbFailure) -> None:
    assert db_failure(error) is expected
    wrapped = sa_exc.OperationalError("SELECT 1", {}, error)  # as SQLAlchemy raises it
    assert db_failure(wrapped) is expected


def test_a_conflict_is_a_transient_kind() -> None:
    assert [kind for kind in DbFailure if kind.transient] == [CONFLICT, TRANSIENT]


def test_sqlalchemy_marks_disconnects_and_pool_timeouts_transient() -> None:
    lost = sa_exc.OperationalError("SELECT 1", {}, ValueError("x"), connection_invalidated=True)
    assert db_failure(lost) is TRANSIENT
    assert db_failure(sa_exc.TimeoutError("QueuePool limit reached")) is TRANSIENT
    assert db_failure(sa_exc.ArgumentError("bad URL")) is TERMINAL
