"""Migrations: from empty, the upgrade 001 → latest with data kept, and the runner's guard rails."""

from __future__ import annotations

import shutil
import threading
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.staging import StageItem, StagingError, StagingStore
from pipeline.staging.migrations import Migration, discover
from tests.staging.helpers import FakeClock

LATEST = len(discover("sqlite"))


def test_every_dialect_ships_the_same_versions() -> None:
    names = {
        b: [(m.version, m.name) for m in discover(b)] for b in ("sqlite", "postgresql", "mysql")
    }
    assert names["sqlite"] == names["postgresql"] == names["mysql"]
    assert LATEST >= 2


def test_an_empty_database_is_migrated_to_the_latest_version(empty_url: str) -> None:
    with StagingStore.open(empty_url) as store:
        assert store.schema_version == LATEST
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT version, name FROM schema_migrations ORDER BY version"
            ).all()
        assert [tuple(row) for row in rows] == [
            (1, "initial"),
            (2, "push_pending"),
            (3, "outcomes"),
            (4, "push_in_doubt"),
        ]
        assert store.migrate() == [], "reopening applies nothing"


def test_sqlite_parent_directories_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "staging.db"
    with StagingStore.open(f"sqlite:///{target}") as store:
        assert store.schema_version == LATEST
    assert target.is_file()


def _old_rows(now: datetime) -> list[dict[str, object]]:
    """Invoices as version 001 stored them (no push_pending column yet)."""
    base: dict[str, object] = {
        "mapping": "m",
        "state": "sent",
        "payload_hash": "h",
        "acked_hash": "h",
        "acked_payload": '{"invoice_id": "x"}',
        "uuid": "u",
        "appzen_status": "CREATED",
        "attempts": 1,
        "send_count": 1,
        "resent_after_crash": 0,
        "push_count": 0,
        "first_sent_at": now,
        "last_sent_at": now,
        "created_at": now,
        "updated_at": now,
        "erp_status": None,
        "erp_error": None,
        "pushed_status": None,
        "pushed_error": None,
    }
    return [
        base | {"invoice_id": "pushed", "erp_status": "POSTED", "pushed_status": "POSTED"},
        base | {"invoice_id": "new-status", "erp_status": "PAID", "pushed_status": "POSTED"},
        base | {"invoice_id": "never-pushed", "erp_status": "POSTED"},
        base
        | {
            "invoice_id": "error",
            "erp_error": '{"message":"x"}',
            "pushed_error": '{"message":"x"}',
        },
        base | {"invoice_id": "no-status"},
    ]


def test_upgrade_from_001_keeps_the_data_and_backfills(empty_url: str) -> None:
    clock = FakeClock()
    store = StagingStore.open(empty_url, now=clock, migrate=False)
    try:
        assert store.migrate(target=1) == [1]
        assert store.schema_version == 1
        with store.engine.begin() as conn:
            old = sa.MetaData()
            invoices = sa.Table("invoices", old, autoload_with=conn)
            runs = sa.Table("runs", old, autoload_with=conn)
            assert "push_pending" not in invoices.c
            naive = clock().replace(tzinfo=None)
            conn.execute(sa.insert(invoices), _old_rows(naive))
            conn.execute(
                sa.insert(runs).values(
                    flow="nightly",
                    mapping="m",
                    parameters="{}",
                    historical=False,
                    started_at=naive,
                    finished_at=naive,
                    status="succeeded",
                    counts="{}",
                    watermark="2025-01-31",
                )
            )
        assert store.migrate() == list(range(2, LATEST + 1))
        assert store.schema_version == LATEST
        assert store.count_by_state("m") == {"sent": 5}
        assert store.last_watermark("m") == "2025-01-31"
        assert [c.invoice_id for c in store.status_candidates("m", 10)] == [
            "never-pushed",
            "new-status",
        ]
        record = store.get_invoice("m", "pushed")
        assert record is not None
        assert (record.acked_payload, record.first_sent_at) == (b'{"invoice_id": "x"}', clock())
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
    assert sorted(versions) == list(range(1, LATEST + 1))


def test_a_database_newer_than_the_code_is_refused(empty_url: str) -> None:
    with StagingStore.open(empty_url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO schema_migrations (version, name, applied_at) "
            "VALUES (99, 'future', '2030-01-01 00:00:00')"
        )
    with pytest.raises(
        StagingError, match=rf"schema version 99 but this appzen-etl knows .* up to {LATEST}"
    ):
        StagingStore.open(empty_url)


def _dir(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations" / "sqlite"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder.parent


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_initial.sql": "SELECT 1;"}, r"1_initial.sql: migration files are named NNN_<name>"),
        ({"001_a.sql": "SELECT 1;", "003_c.sql": "SELECT 1;"}, r"003_c.sql: expected version 002"),
        ({"002_b.sql": "SELECT 1;"}, r"002_b.sql: expected version 001"),
    ],
)
def test_badly_named_migrations_are_refused(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    root = _dir(tmp_path, files)
    with pytest.raises(StagingError, match=message):
        StagingStore.open(f"sqlite:///{tmp_path}/s.db", migrations_dir=root)


def test_a_failing_migration_is_rolled_back_whole_and_named(tmp_path: Path) -> None:
    root = _dir(
        tmp_path,
        {
            "001_initial.sql": "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT, applied_at DATETIME);\n"
            "CREATE TABLE t (a INTEGER);\n"
            "INSERT INTO nowhere VALUES (1);\n",
        },
    )
    url = f"sqlite:///{tmp_path}/s.db"
    with pytest.raises(StagingError, match=r"001_initial.sql: statement 3 failed: no such table"):
        StagingStore.open(url, migrations_dir=root)
    engine = sa.create_engine(url)
    assert sa.inspect(engine).get_table_names() == [], "transactional DDL: nothing applied"
    engine.dispose()


def test_statements_are_split_at_line_ending_semicolons(tmp_path: Path) -> None:
    path = tmp_path / "001_x.sql"
    path.write_text(
        "-- a comment; with a semicolon\nCREATE TABLE a (x TEXT);\n\n"
        "UPDATE a\nSET x = 'y';  \nSELECT 1"
    )
    assert Migration(1, "x", path).statements() == [
        "CREATE TABLE a (x TEXT)",
        "UPDATE a\nSET x = 'y'",
        "SELECT 1",
    ]


def test_percent_signs_in_migrations_reach_the_server_unchanged(
    empty_url: str, tmp_path: Path
) -> None:
    probe = StagingStore.open(empty_url, migrate=False)
    backend = probe.backend
    probe.close()
    folder = tmp_path / "m" / backend
    shutil.copytree(discover(backend)[0].path.parent, folder)
    (folder / f"{LATEST + 1:03d}_percent.sql").write_text(
        "INSERT INTO runs (flow, mapping, parameters, historical, started_at, status, watermark)\n"
        "SELECT 'n%', 'm', '{}', false, applied_at, 'succeeded', '100%' FROM schema_migrations\n"
        "WHERE name LIKE 'init%';\n"
    )
    with StagingStore.open(empty_url, migrations_dir=folder.parent) as store:
        assert store.schema_version == LATEST + 1
        assert store.last_watermark("m") == "100%"
