"""A staging database the pre-Alembic runner made (versions 1, 2 and 4) is stamped and upgraded
in place on SQLite, PostgreSQL and MariaDB: every row survives and the schema equals tables.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pipeline.staging import StagingError, StagingStore
from pipeline.staging.migrations import head_revision
from pipeline.staging.tables import metadata
from tests.staging.legacy import LEGACY_LATEST, apply_legacy

Rows = dict[str, list[dict[str, Any]]]
NOW = datetime(2025, 3, 1, 12, 0)  # naive UTC, as the legacy tables store it


def _invoice(key: str, **changes: object) -> dict[str, object]:
    return {
        "mapping": "m",
        "invoice_id": key,
        "state": "sent",
        "payload_hash": "h",
        "acked_hash": "h",
        "acked_payload": '{"invoice_id": "' + key + '", "note": "100% ünïcode"}',
        "uuid": f"uuid-{key}",
        "appzen_status": "CREATED",
        "attempts": 1,
        "send_count": 1,
        "resent_after_crash": 0,
        "push_count": 0,
        "first_sent_at": NOW,
        "last_sent_at": NOW,
        "created_at": NOW,
        "updated_at": NOW,
    } | changes


INVOICES = [
    _invoice("pushed", erp_status="POSTED", pushed_status="POSTED", push_count=1),
    _invoice("new-status", erp_status="PAID", pushed_status="POSTED", push_count=1),
    _invoice("never-pushed", erp_status="POSTED"),
    _invoice("error", erp_error='{"message":"x"}', pushed_error='{"message":"x"}'),
    _invoice("rejected", state="rejected", acked_hash=None, rejected_hash="h", uuid=None),
]
RUN = {"flow": "nightly", "mapping": "m", "parameters": "{}", "historical": False}
FAILURE = {"mapping": "m", "stage": "appzen", "rule": "appzen_400", "message": "bad"}


def _rows(version: int) -> Rows:
    """Rows for every table that exists at legacy ``version``."""
    invoices = [dict(row) for row in INVOICES]
    if version >= 2:  # what the legacy code kept in push_pending
        for row in invoices:
            row["push_pending"] = row.get("erp_status") != row.get("pushed_status")
    if version >= 4:
        invoices[1]["push_in_doubt"] = '["PAID", null]'
    rows: Rows = {
        "runs": [
            RUN
            | {
                "started_at": NOW,
                "finished_at": NOW,
                "status": "succeeded",
                "counts": '{"sent": 4}',
                "watermark": "2025-01-31",
            },
            RUN | {"started_at": NOW, "status": "running"},
        ],
        "invoices": invoices,
        "failures": [
            FAILURE
            | {
                "run_id": 1,
                "source_key": key,
                "attempts": 1,
                "first_seen_at": NOW,
                "last_seen_at": NOW,
                "value": "=cmd|' /C calc'!A0",
            }
            for key in ("rejected", "gone")
        ],
    }
    if version >= 3:
        rows["audit_outcomes"] = [
            {"mapping": "m", "invoice_id": "pushed", "uuid": "uuid-pushed", "outcome": "approved",
             "source": "poll", "recorded_at": NOW, "rules": "[]"},
        ]  # fmt: skip
        rows["writebacks"] = [
            {"mapping": "m", "invoice_id": "pushed", "target": "merchant", "state": "APPROVED",
             "result": "written", "attempts": 1, "updated_at": NOW},
        ]  # fmt: skip
    return rows


def _insert(url: str, rows: Rows) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)
            for name, table_rows in rows.items():
                keys = {key for row in table_rows for key in row}  # executemany: same keys
                filled = [dict.fromkeys(keys) | row for row in table_rows]
                conn.execute(sa.insert(tables.tables[name]), filled)
    finally:
        engine.dispose()


def _dump(url: str) -> Rows:
    """Every row of every table, by primary key."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)
            return {
                name: [
                    dict(row)
                    for row in conn.execute(
                        sa.select(table).order_by(*table.primary_key.columns)
                    ).mappings()
                ]
                for name, table in tables.tables.items()
                if name != "alembic_version"
            }
    finally:
        engine.dispose()


def _differences(store: StagingStore) -> list[object]:
    with store.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


@pytest.mark.parametrize("version", [1, 2, LEGACY_LATEST])
def test_a_legacy_database_is_stamped_and_upgraded_keeping_every_row(
    empty_url: str, version: int
) -> None:
    apply_legacy(empty_url, version)
    _insert(empty_url, _rows(version))
    before = _dump(empty_url)

    with StagingStore.open(empty_url) as store:
        assert store.schema_revision == head_revision()
        assert _differences(store) == []
        after = _dump(empty_url)
        assert sorted(after) == sorted(metadata.tables)
        for table, rows in before.items():
            kept = [{key: row[key] for key in rows[0]} for row in after[table]]
            added = kept[len(rows) :] if table == "schema_migrations" else []
            assert kept == rows + added, table
        versions = [row["version"] for row in after["schema_migrations"]]
        assert versions == [1, 2, 3, 4, 5], "the revisions after the stamp record theirs"
        _check_the_store_reads_and_writes(store, version)


def _check_the_store_reads_and_writes(store: StagingStore, version: int) -> None:
    assert store.count_by_state("m") == {"sent": 4, "rejected": 1}
    assert store.last_watermark("m") == "2025-01-31"
    assert [c.invoice_id for c in store.status_candidates("m", 10)] == [
        "never-pushed",
        "new-status",
    ], "push_pending kept (or computed by revision 0002 for a version-1 database)"
    assert [f.failure.source_key for f in store.failures_for_run(1)] == ["rejected", "gone"]
    record = store.get_invoice("m", "pushed")
    assert record is not None
    assert record.first_sent_at == NOW.replace(tzinfo=UTC)
    assert store.start_run("sync", "m", {}, historical=False) == 3, "ids continue after the rows"
    if version >= 3:
        assert store.audit.mappings_of(["pushed"], ["m"]) == {"pushed": ["m"]}


def test_reopening_an_upgraded_legacy_database_changes_nothing(empty_url: str) -> None:
    apply_legacy(empty_url, LEGACY_LATEST)
    with StagingStore.open(empty_url) as store:
        assert store.migrate() == []
    before = _dump(empty_url)
    with StagingStore.open(empty_url) as store:
        assert store.migrate() == []
    assert _dump(empty_url) == before


def test_a_legacy_database_newer_than_the_code_is_refused(empty_url: str) -> None:
    apply_legacy(empty_url, LEGACY_LATEST)
    _insert(empty_url, {"schema_migrations": [{"version": 9, "name": "x", "applied_at": NOW}]})
    with pytest.raises(
        StagingError,
        match=r"schema version 9 but this appzen-etl knows versions up to 4 .*; upgrade "
        r"appzen-etl \(never downgrade a staging database\)",
    ):
        StagingStore.open(empty_url)


def test_a_legacy_first_migration_left_half_done_is_named(empty_url: str) -> None:
    engine = sa.create_engine(empty_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, "
            "name VARCHAR(200) NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
    engine.dispose()
    with pytest.raises(StagingError, match=r"empty schema_migrations table: its first migration"):
        StagingStore.open(empty_url)
