"""A named lock held through the staging database: one status-sync per mapping at a time.

Two status-sync runs of one mapping that overlap would each push the same pending statuses; the
lock makes the second wait until the first has recorded its pushes (and then finds nothing left
to push). The lock lives where staging does, so it holds across processes and machines, and each
kind is released by the database or the kernel when its holder dies (kill -9 never leaves it
taken):

* PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection held for the run;
* MariaDB/MySQL: ``GET_LOCK`` on a connection held for the run;
* SQLite: ``flock`` on a file beside the database (``<db>.<lock>.lock``); an in-memory database
  has a lock per process.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from pipeline.staging.errors import staging_error

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS: a lock per process only
    fcntl = None  # type: ignore[assignment]

_LOCAL: dict[str, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class NamedLock:
    """A lock named ``name`` in the staging database of ``engine``; :meth:`try_acquire` never
    blocks (the caller polls), :meth:`release` gives it back."""

    def __init__(self, engine: Engine, name: str, url: str) -> None:
        self._engine = engine
        self._url = url
        self._name = name
        self._digest = hashlib.sha256(name.encode()).hexdigest()
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None
        self._local: threading.Lock | None = None

    @property
    def name(self) -> str:
        """What the lock guards (``status-sync:sample_erp``)."""
        return self._name

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another holder has it."""
        try:
            return self._try()
        except sa_exc.SQLAlchemyError as error:
            raise staging_error(self._url, f"taking the lock {self._name}", error) from None

    def _try(self) -> bool:
        backend = self._engine.dialect.name
        if backend == "postgresql":
            return self._try_sql("SELECT pg_try_advisory_lock(:key)", {"key": self._key()})
        if backend in {"mysql", "mariadb"}:
            return self._try_sql("SELECT GET_LOCK(:name, 0)", {"name": self._mysql_name()})
        return self._try_file()

    def release(self) -> None:
        """Give the lock back (closing the connection or file that holds it)."""
        try:
            self._release()
        except sa_exc.SQLAlchemyError as error:
            raise staging_error(self._url, f"releasing the lock {self._name}", error) from None

    def _release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                backend = self._engine.dialect.name
                if backend == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key()})
                else:
                    conn.execute(
                        sa.text("SELECT RELEASE_LOCK(:name)"), {"name": self._mysql_name()}
                    )
            finally:
                conn.invalidate()  # never back to the pool with a session lock on it
                conn.close()
        if self._file is not None:
            handle, self._file = self._file, None
            handle.close()  # closing the file drops its flock
        if self._local is not None:
            local, self._local = self._local, None
            local.release()

    def _key(self) -> int:
        return int.from_bytes(bytes.fromhex(self._digest[:16]), "big", signed=True)

    def _mysql_name(self) -> str:
        return f"appzen-etl:{self._digest[:40]}"  # GET_LOCK names stop at 64 characters

    def _try_sql(self, statement: str, params: dict[str, object]) -> bool:
        conn = self._engine.connect()
        try:
            taken = bool(conn.execute(sa.text(statement), params).scalar())
            conn.commit()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def _try_file(self) -> bool:
        database = self._engine.url.database or ""
        if fcntl is None or database in {"", ":memory:"} or database.startswith("file:"):
            return self._try_local()
        # Kept open while the lock is held: closing it is what releases the flock.
        handle = Path(f"{database}.{self._digest[:16]}.lock").open("ab")  # noqa: SIM115
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except BaseException:
            handle.close()
            raise
        self._file = handle
        return True

    def _try_local(self) -> bool:
        with _LOCAL_GUARD:
            lock = _LOCAL.setdefault(self._name, threading.Lock())
        if not lock.acquire(blocking=False):
            return False
        self._local = lock
        return True
