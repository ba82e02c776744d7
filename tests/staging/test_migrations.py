"""Migrations: from empty to the head revision, an upgrade with data kept, and the runner's guard
rails (one migrator at a time, newer databases refused, a failing revision rolled back whole)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

import pipeline.staging as staging_package
from pipeline.resources import package_dir
from pipeline.staging import StageItem, StagingError, StagingStore
from pipeline.staging.engine import backend_of, create_staging_engine
from pipeline.staging.migrations import head_revision, script_directory, upgrade
from tests.staging.helpers import FakeClock
from tests.staging.test_legacy_upgrade import INVOICES, NOW

LEGACY = ["0001_initial", "0002_push_pending", "0003_outcomes", "0004_push_in_doubt"]
"""The revisions that reproduce the pre-Alembic SQL files 001-004, in order."""
REVISIONS = [rev.revision for rev in reversed(list(script_directory().walk_revisions()))]
"""Every revision, oldest first (one line of history: tests/staging/test_schema.py)."""


def test_history_starts_with_the_legacy_files_then_the_alembic_guard() -> None:
    assert REVISIONS[: len(LEGACY) + 1] == [*LEGACY, "0005_alembic"]


def test_an_empty_database_is_migrated_to_the_head_revision(empty_url: str) -> None:
    store = StagingStore.open(empty_url, migrate=False)
    try:
        assert store.schema_revision is None
        assert store.migrate() == REVISIONS
        assert store.schema_revision == head_revision() == REVISIONS[-1]
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT version, name FROM schema_migrations ORDER BY version"
            ).all()
        assert [tuple(row) for row in rows] == [
            (1, "initial"),
            (2, "push_pending"),
            (3, "outcomes"),
            (4, "push_in_doubt"),
            (5, "alembic"),  # releases before Alembic know 1-4: they refuse this database
        ]
        assert store.migrate() == [], "reopening applies nothing"
    finally:
        store.close()


def test_sqlite_parent_directories_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "staging.db"
    with StagingStore.open(f"sqlite:///{target}") as store:
        assert store.schema_revision == head_revision()
    assert target.is_file()


def test_upgrade_from_0001_keeps_the_data_and_backfills(empty_url: str) -> None:
    clock = FakeClock()
    store = StagingStore.open(empty_url, now=clock, migrate=False)
    try:
        assert store.migrate(target="0001_initial") == ["0001_initial"]
        assert store.schema_revision == "0001_initial"
        with store.engine.begin() as conn:
            old = sa.MetaData()
            invoices = sa.Table("invoices", old, autoload_with=conn)
            runs = sa.Table("runs", old, autoload_with=conn)
            assert "push_pending" not in invoices.c
            keys = {key for row in INVOICES for key in row}
            conn.execute(sa.insert(invoices), [dict.fromkeys(keys) | row for row in INVOICES])
            conn.execute(
                sa.insert(runs).values(
                    flow="nightly",
                    mapping="m",
                    parameters="{}",
                    historical=False,
                    started_at=NOW,
                    finished_at=NOW,
                    status="succeeded",
                    counts="{}",
                    watermark="2025-01-31",
                )
            )
        assert store.migrate() == REVISIONS[1:]
        assert store.schema_revision == head_revision()
        assert store.count_by_state("m") == {"sent": 4, "rejected": 1}
        assert store.last_watermark("m") == "2025-01-31"
        assert [c.invoice_id for c in store.status_candidates("m", 10)] == [
            "never-pushed",
            "new-status",
        ]
        record = store.get_invoice("m", "pushed")
        assert record is not None
        assert record.acked_payload is not None
        assert record.first_sent_at == clock()
        decisions = store.claim_batch(
            "m", [StageItem("pushed", "h", "POSTED")], owner="w", lease_seconds=5, run_id=1
        )
        assert decisions[0].action == "unchanged"
    finally:
        store.close()


def test_two_processes_opening_an_empty_database_at_once_migrate_it_once(empty_url: str) -> None:
    barrier, errors = threading.Barrier(2), []

    def open_store() -> None:
        barrier.wait(timeout=10)
        try:
            StagingStore.open(empty_url).close()
        except Exception as error:  # reported below, with the thread's result
            errors.append(error)

    threads = [threading.Thread(target=open_store) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with StagingStore.open(empty_url) as store, store.engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version FROM schema_migrations").scalars().all()
        heads = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    assert sorted(versions) == [1, 2, 3, 4, 5]  # the legacy history and its guard, each once
    assert heads == [head_revision()]


def test_a_database_newer_than_the_code_is_refused(empty_url: str) -> None:
    with StagingStore.open(empty_url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099_future'")
    with pytest.raises(
        StagingError,
        match=rf"schema revision 0099_future, which this appzen-etl does not know \(its newest "
        rf"is {head_revision()}\).*; upgrade appzen-etl \(never downgrade a staging database\)",
    ):
        StagingStore.open(empty_url)


def _scripts_with(tmp_path: Path, name: str, body: str) -> ScriptDirectory:
    """The shipped revisions plus ``versions/<name>.py`` on top of the head."""
    folder = tmp_path / "alembic"
    shutil.copytree(package_dir("pipeline.staging", "alembic"), folder)
    revision = name.removeprefix("r")
    (folder / "versions" / f"{name}.py").write_text(
        f'"""{revision}."""\n\nfrom alembic import op\n\nrevision = "{revision}"\n'
        f'down_revision = "{head_revision()}"\n\n\ndef upgrade() -> None:\n{body}'
    )
    return ScriptDirectory(str(folder))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_failing_revision_is_rolled_back_whole_and_named(
    empty_url: str, tmp_path: Path, backend: str
) -> None:
    script = _scripts_with(
        tmp_path,
        "r0006_broken",
        '    op.execute("CREATE TABLE t (a INTEGER)")\n'
        '    op.execute("INSERT INTO nowhere VALUES (1)")\n',
    )
    engine = create_staging_engine(empty_url, 30)  # the store's: SQLite DDL in BEGIN IMMEDIATE
    try:
        with (
            engine.connect() as conn,
            pytest.raises(StagingError, match=r"staging schema revision 0006_broken failed: "),
        ):
            upgrade(conn, backend, script=script)
        assert sa.inspect(engine).get_table_names() == [], "transactional DDL: nothing applied"
    finally:
        engine.dispose()


def test_percent_signs_and_colons_in_a_revision_reach_the_server_unchanged(
    empty_url: str, tmp_path: Path
) -> None:
    percent = (
        "INSERT INTO runs (flow, mapping, parameters, historical, started_at, status, watermark) "
        "SELECT 'n%', 'm', '{}', false, applied_at, 'succeeded', '100% 12:30' "
        "FROM schema_migrations WHERE name LIKE 'init%'"
    )
    script = _scripts_with(tmp_path, "r0006_percent", f"    op.execute({percent!r})\n")
    StagingStore.open(empty_url).close()
    engine = create_staging_engine(empty_url, 30)
    try:
        with engine.connect() as conn:
            assert upgrade(conn, backend_of(empty_url), script=script) == ["0006_percent"]
    finally:
        engine.dispose()
    with StagingStore.open(empty_url, migrate=False) as store:
        assert store.last_watermark("m") == "100% 12:30"


def test_the_revisions_are_read_from_the_installed_package() -> None:
    location = Path(str(script_directory().dir))
    assert location == package_dir("pipeline.staging", "alembic")
    assert location == Path(str(staging_package.__file__)).parent / "alembic"
