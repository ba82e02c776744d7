"""Versioned staging migrations: ``sql/staging/<dialect>/NNN_<name>.sql`` applied in order, once.

Each migration runs in its own transaction together with its ``schema_migrations`` row, so on
SQLite and PostgreSQL (transactional DDL) it is applied whole or not at all. MySQL commits each DDL
statement implicitly: keep one DDL statement per concern there, and if a migration is interrupted
the error names it so an operator can finish it by hand. Two processes opening the store at once
serialize on a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL, ``GET_LOCK``
on MySQL), and each re-reads the version under it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.staging.errors import StagingTerminalError
from pipeline.staging.tables import schema_migrations


def _default_dir() -> Path:
    """``pipeline/staging/sql`` when packaged into a wheel, else the checkout's ``sql/staging``."""
    packaged = Path(__file__).resolve().parent / "sql"
    return (
        packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "sql" / "staging"
    )


MIGRATIONS_DIR = _default_dir()
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_LOCK_WAIT_S = 120


@dataclass(frozen=True, slots=True)
class Migration:
    """One DDL file: its version, name and statements."""

    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file's SQL statements: ``--`` comments dropped, split at a ``;`` ending a line."""
        lines = self.path.read_text("utf-8").splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
        parts = re.split(r";[ \t]*(?:\n|$)", text)
        return [part.strip() for part in parts if part.strip()]


def discover(backend: str, root: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations for ``backend`` in version order; versions must run 1, 2, 3 … without gaps."""
    folder = root / backend
    if not folder.is_dir():
        raise StagingTerminalError(
            f"{folder}: no staging migrations for {backend}; reinstall appzen-etl"
        )
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise StagingTerminalError(
                f"{path}: migration files are named NNN_<name>.sql; rename it"
            )
        found.append(Migration(int(match.group(1)), match.group(2), path))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StagingTerminalError(
                f"{migration.path}: expected version {expected:03d} here (versions run 001, 002, "
                "… without gaps or duplicates); renumber the file"
            )
    return found


def current_version(conn: Connection) -> int:
    """The highest applied version; 0 for an empty database."""
    if not sa.inspect(conn).has_table("schema_migrations"):
        return 0
    version = conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar()
    return int(version or 0)


def apply_pending(
    conn: Connection,
    backend: str,
    now: Callable[[], datetime],
    *,
    target: int | None = None,
    root: Path = MIGRATIONS_DIR,
) -> list[int]:
    """Apply every migration above the database's version (up to ``target``); return those run."""
    migrations = discover(backend, root)
    latest = migrations[-1].version if migrations else 0
    goal = latest if target is None else target
    applied: list[int] = []
    with _migration_lock(conn, backend):
        while True:
            with conn.begin():
                version = current_version(conn)
                _check_known(version, latest)
                if version >= goal:
                    return applied
                _apply(conn, migrations[version], now())
                applied.append(version + 1)


def _check_known(version: int, latest: int) -> None:
    if version > latest:
        raise StagingTerminalError(
            f"the staging database is at schema version {version} but this appzen-etl knows "
            f"migrations up to {latest}; upgrade appzen-etl (never downgrade a staging database)"
        )


def _apply(conn: Connection, migration: Migration, at: datetime) -> None:
    percent_escaped = conn.dialect.paramstyle in {"format", "pyformat"}
    for number, statement in enumerate(migration.statements(), start=1):
        try:
            # psycopg and PyMySQL read % as a placeholder even without parameters: "%%" is "%".
            conn.exec_driver_sql(statement.replace("%", "%%") if percent_escaped else statement)
        except sa.exc.DBAPIError as error:
            raise StagingTerminalError(
                f"{migration.path}: statement {number} failed: "
                f"{' '.join(str(a) for a in getattr(error.orig, 'args', ()))}; on MySQL earlier "
                "statements of this file may already be applied (DDL is not transactional "
                "there): finish or undo them by hand, then reopen the store"
            ) from None
    conn.execute(
        sa.insert(schema_migrations).values(
            version=migration.version, name=migration.name, applied_at=at
        )
    )


@contextmanager
def _migration_lock(conn: Connection, backend: str) -> Iterator[None]:
    """Serialize migrators across processes (SQLite needs nothing: BEGIN IMMEDIATE does it)."""
    if backend == "sqlite":
        yield
        return
    if backend == "postgresql":
        key = "hashtext('appzen_staging_migrate:' || current_schema())"
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        conn.commit()
        try:
            yield
        finally:
            conn.rollback()
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
            conn.commit()
        return
    name = "CONCAT('azs_migrate_', MD5(DATABASE()))"
    got = conn.exec_driver_sql(f"SELECT GET_LOCK({name}, {_LOCK_WAIT_S})").scalar()
    conn.commit()
    if got != 1:
        raise StagingTerminalError(
            f"another process has been migrating this staging database for {_LOCK_WAIT_S} s; "
            "wait for it to finish, then retry"
        )
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql(f"SELECT RELEASE_LOCK({name})")
        conn.commit()
