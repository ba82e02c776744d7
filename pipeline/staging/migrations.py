"""Staging schema migrations: Alembic revisions upgrade a database to this code's head, once.

The revisions are package data (``pipeline/staging/alembic/versions``, found with
:mod:`importlib.resources`) and run without ``env.py``: a ``MigrationContext`` on the store's
own connection. The whole upgrade is one transaction, so on SQLite and PostgreSQL (transactional
DDL) it applies whole or not at all; MySQL commits each DDL statement implicitly, so a revision
interrupted there is named for an operator to finish by hand. Two processes opening the store at
once serialize on a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL,
``GET_LOCK`` on MySQL), and each reads the revision under it.

A database the pre-Alembic runner created (``schema_migrations``, no ``alembic_version``) is
stamped at the revision of its version first (:mod:`pipeline.staging.legacy`). A database at a
revision this code does not know was upgraded by a newer appzen-etl: it is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext, MigrationInfo, RevisionStep
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from pipeline import resources
from pipeline.staging import legacy
from pipeline.staging.errors import StagingTerminalError, driver_message, scrub

_LOCK_WAIT_S = 120
_NEVER_DOWNGRADE = "upgrade appzen-etl (never downgrade a staging database)"


@functools.cache
def script_directory() -> ScriptDirectory:
    """The staging schema's revisions, from the installed package."""
    config = Config()
    location = resources.package_dir("pipeline.staging", "alembic")
    config.set_main_option("script_location", str(location))
    return ScriptDirectory.from_config(config)


def head_revision(script: ScriptDirectory | None = None) -> str:
    """The newest revision this code knows."""
    head = (script or script_directory()).get_current_head()
    if head is None:
        raise StagingTerminalError(
            "no staging schema revisions are installed; reinstall appzen-etl"
        )
    return head


def current_revision(conn: Connection) -> str | None:
    """The database's revision; ``None`` for an empty (or not yet stamped pre-Alembic) one."""
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(
    conn: Connection,
    backend: str,
    *,
    target: str = "head",
    script: ScriptDirectory | None = None,
) -> list[str]:
    """Upgrade the database to ``target`` (under the migration lock); the revisions applied."""
    plan = _Upgrade(script or script_directory(), target)
    with _migration_lock(conn, backend), conn.begin():
        context = MigrationContext.configure(conn, opts=plan.options(backend))
        _stamp_legacy_or_refuse(conn, context, plan.script)
        try:
            with Operations.context(context):
                context.run_migrations()
        except sa.exc.DBAPIError as error:
            url = conn.engine.url.render_as_string(hide_password=False)
            raise StagingTerminalError(
                f"staging schema revision {plan.running()} failed: "
                f"{scrub(driver_message(error), url)}; on MySQL its first statements may already "
                "be applied (DDL is not transactional there): finish or undo them by hand, then "
                "reopen the store"
            ) from None
    return plan.applied


@dataclass
class _Upgrade:
    """The revisions to run from the database's heads to ``target``, and those done so far."""

    script: ScriptDirectory
    target: str
    planned: list[RevisionStep] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)

    def steps(self, heads: tuple[str, ...], _context: MigrationContext) -> list[RevisionStep]:
        """Alembic's ``fn``: the upgrade steps from ``heads`` (read under the lock)."""
        try:
            # What alembic.command.upgrade does; it passes the heads tuple too (typed ``str``).
            self.planned = self.script._upgrade_revs(self.target, heads)  # type: ignore[arg-type]
        except (CommandError, RevisionError) as error:
            raise StagingTerminalError(
                f"cannot upgrade the staging schema to {self.target}: {error}"
            ) from None
        return self.planned

    def options(self, backend: str) -> dict[str, object]:
        """The ``MigrationContext`` options: run :meth:`steps`, report to :meth:`done`."""
        return {
            "script": self.script,
            "fn": self.steps,
            "on_version_apply": [self.done],
            # SQLite DDL is transactional inside the store's BEGIN IMMEDIATE (Alembic assumes not).
            "transactional_ddl": backend != "mysql",
        }

    def done(self, *, step: MigrationInfo, **_: object) -> None:
        """Alembic's ``on_version_apply``: a revision ran."""
        self.applied.extend(step.up_revision_ids)

    def running(self) -> str:
        """The revision that was running (the first not done)."""
        index = len(self.applied)
        return self.planned[index].revision.revision if index < len(self.planned) else self.target


def _stamp_legacy_or_refuse(
    conn: Connection, context: MigrationContext, script: ScriptDirectory
) -> None:
    """Stamp a database the pre-Alembic runner made at its revision; refuse a revision this
    code does not know."""
    heads = context.get_current_heads()
    if not heads:
        stamp = _legacy_revision(conn, script)
        if stamp is None:
            return
        context.stamp(script, stamp)
        heads = (stamp,)
    for head in heads:
        try:
            script.get_revision(head)
        except (CommandError, RevisionError):
            raise StagingTerminalError(
                f"the staging database is at schema revision {head}, which this appzen-etl does "
                f"not know (its newest is {head_revision(script)}): a newer appzen-etl upgraded "
                f"it; {_NEVER_DOWNGRADE}"
            ) from None


def _legacy_revision(conn: Connection, script: ScriptDirectory) -> str | None:
    """The revision a pre-Alembic database is at; ``None`` for an empty database."""
    version = legacy.legacy_version(conn)
    if version is None:
        return None
    if version == 0:
        raise StagingTerminalError(
            "the staging database has an empty schema_migrations table: its first migration was "
            "interrupted (on MySQL, where DDL is not transactional); drop the staging tables it "
            "created, then reopen the store"
        )
    known = max(legacy.REVISIONS)
    if version not in legacy.REVISIONS:
        raise StagingTerminalError(
            f"the staging database is at schema version {version} but this appzen-etl knows "
            f"versions up to {known} (revision {head_revision(script)}); {_NEVER_DOWNGRADE}"
        )
    return legacy.REVISIONS[version]


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
