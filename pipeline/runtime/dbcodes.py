"""What a database driver's error code says about retrying: run the whole transaction again,
retry later, or stop. Read from the driver's own codes, never from its message text.

* SQLite (``sqlite3``, ``sqlite_errorcode``): SQLITE_BUSY (5) and SQLITE_LOCKED (6) are
  transient; disk I/O (10), full (13), cannot open (14), read-only (8) and the rest are terminal.
* PostgreSQL (psycopg 3 ``sqlstate``, psycopg2 ``pgcode``): 40001 serialization failure and
  40P01 deadlock are conflicts; class 08 (connection), 53300 too many connections, 55P03 lock not
  available, 57P01/57P02/57P03 (shutdown, crash, cannot connect now) are transient. libpq gives
  no SQLSTATE when a connection attempt fails (refused, unknown host, and also a login or a
  database the server refused), so an ``OperationalError`` without one counts as transient: in a
  running job it is the server going away, and the hint text still tells a person which it was.
* MySQL / MariaDB (PyMySQL, mysqlclient: ``args[0]``): 1213 deadlock is a conflict; 1205 lock
  wait timeout, 1040 too many connections, 1053 shutdown, 2002/2003/2006/2013 (no connection,
  gone away, lost) are transient.
* SQLAlchemy itself: a connection-pool timeout, or an error it marked ``connection_invalidated``
  (a disconnect), is transient.

Nothing here imports a driver: a driver's error types are looked up only when that driver is
already loaded (it raised the error being read).
"""

from __future__ import annotations

import enum
import sqlite3
import sys


class DbFailure(enum.Enum):
    """What a failed database call calls for."""

    CONFLICT = "conflict"  # another transaction got in the way: run the whole transaction again
    TRANSIENT = "transient"  # locked, busy or unreachable for now: the same work may succeed later
    TERMINAL = "terminal"  # retrying cannot help: a person must fix the URL, rights, disk, schema

    @property
    def transient(self) -> bool:
        """True for a conflict or a transient failure: a retry (later) may succeed."""
        return self is not DbFailure.TERMINAL


_SQLITE_TRANSIENT = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED (primary codes)
_PG_CONFLICT = frozenset({"40001", "40P01"})
_PG_TRANSIENT = frozenset({"53300", "55P03", "57P01", "57P02", "57P03"})
_PG_TRANSIENT_CLASSES = frozenset({"08"})
_MYSQL_CONFLICT = frozenset({1213})
_MYSQL_TRANSIENT = frozenset({1040, 1053, 1205, 2002, 2003, 2006, 2013})


def db_failure(error: BaseException) -> DbFailure:
    """The kind of ``error``: a SQLAlchemy error (its driver error is read) or a driver's own."""
    if _sqlalchemy_says_transient(error):
        return DbFailure.TRANSIENT
    orig = getattr(error, "orig", None)
    driver = orig if isinstance(orig, BaseException) else error
    if isinstance(driver, sqlite3.Error):
        return _sqlite(driver)
    if _is_instance(driver, "pymysql", "MySQLError") or _is_instance(driver, "MySQLdb", "Error"):
        return _mysql(driver)
    for module in ("psycopg", "psycopg2"):
        if _is_instance(driver, module, "Error"):
            return _postgres(driver, lost=_is_instance(driver, module, "OperationalError"))
    return DbFailure.TERMINAL


def _sqlalchemy_says_transient(error: BaseException) -> bool:
    if getattr(error, "connection_invalidated", False) is True:
        return True
    exc = sys.modules.get("sqlalchemy.exc")
    return exc is not None and isinstance(error, exc.TimeoutError)


def _sqlite(error: sqlite3.Error) -> DbFailure:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE_TRANSIENT:
        return DbFailure.TRANSIENT
    return DbFailure.TERMINAL


def _postgres(error: BaseException, *, lost: bool) -> DbFailure:
    """``lost``: an OperationalError, which without a SQLSTATE is a connection that failed."""
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not isinstance(state, str):
        return DbFailure.TRANSIENT if lost else DbFailure.TERMINAL
    if state in _PG_CONFLICT:
        return DbFailure.CONFLICT
    if state in _PG_TRANSIENT or state[:2] in _PG_TRANSIENT_CLASSES:
        return DbFailure.TRANSIENT
    return DbFailure.TERMINAL


def _mysql(error: BaseException) -> DbFailure:
    code = error.args[0] if error.args else None
    if code in _MYSQL_CONFLICT:
        return DbFailure.CONFLICT
    return DbFailure.TRANSIENT if code in _MYSQL_TRANSIENT else DbFailure.TERMINAL


def _is_instance(error: BaseException, module: str, name: str) -> bool:
    """``isinstance(error, <module>.<name>)`` when that driver is loaded (else it cannot be)."""
    loaded = sys.modules.get(module)
    kind = getattr(loaded, name, None) if loaded is not None else None
    return isinstance(kind, type) and isinstance(error, kind)
