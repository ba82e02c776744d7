"""The status read: status-sync reads the ERP's current statuses itself (``status.source``) and
pushes every change exactly once, whether or not the invoice's ``updated_at`` moved; on SQLite,
PostgreSQL and MariaDB, over loopback HTTP to the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, generate, pay, touch
from pipeline.devkit.sandbox import SandboxServer
from pipeline.mapping.errors import MappingError
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from tests.conftest import REPO
from tests.databases import DIALECTS, empty_database
from tests.status.read_helpers import (
    OWN_QUERY,
    OWN_QUERY_WATERMARKED,
    Project,
    project,
    pushes_by_key,
    set_erp,
    status_sync,
    sync,
)

Erp = tuple[str, GenerationReport]
SHIPPED = REPO / "mappings" / "sample_erp.yaml"
ERROR = {"message": "Posting period closed", "status": "F5 201", "exception": "PeriodClosed"}


@pytest.fixture(params=DIALECTS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(erp_url, staging_url)``: two new databases of the parametrized dialect."""
    with (
        empty_database(request.param, tmp_path, "erp") as erp_url,
        empty_database(request.param, tmp_path, "staging") as staging_url,
    ):
        yield erp_url, staging_url


@pytest.fixture
def erp_db(databases: tuple[str, str]) -> Erp:
    """The sample ERP (60 invoices) in the parametrized dialect."""
    return databases[0], generate(databases[0], invoices=60, seed=5)


@pytest.fixture
def db_settings(
    sandbox: SandboxServer, databases: tuple[str, str], erp_db: Erp, tmp_path: Path
) -> Settings:
    """Settings on the sandbox, the parametrized ERP and staging databases."""
    return load_settings(
        appzen_base_url=sandbox.base_url,
        erp_database_url=erp_db[0],
        staging_database_url=databases[1],
        reports_dir=tmp_path / "reports",
        appzen_rate_limit=500,
        appzen_max_concurrency=16,
        appzen_read_timeout=10,
        appzen_retry_attempts=3,
        batch_size=25,
    )


@pytest.fixture
def db_store(db_settings: Settings) -> Iterator[StagingStore]:
    """The parametrized staging store, migrated."""
    with StagingStore.open(db_settings.staging_database_url.get_secret_value()) as opened:
        yield opened


@pytest.fixture
def own(tmp_path: Path) -> Project:
    """The sample ERP mapping with a status query of its own (full keyed read)."""
    return project(tmp_path / "project", OWN_QUERY)


def _clean_sent(report: GenerationReport, store: StagingStore, count: int) -> list[str]:
    """``count`` acknowledged invoices the ERP took (no ERP error), by key."""
    sent = store.invoices_in_state("sample_erp", "sent", 1_000)
    keys = [row.invoice_id for row in sent if row.invoice_id not in report.erp_errors]
    assert len(keys) >= count
    return keys[:count]


async def test_status_changes_with_and_without_updated_at_are_pushed_once(
    db_settings: Settings, sandbox: SandboxServer, erp_db: Erp, db_store: StagingStore, own: Project
) -> None:
    await sync(db_settings, db_store, own.mapping)
    first = await status_sync(db_settings, db_store, own.mapping)
    assert first.status == "succeeded"
    assert all(count == 1 for count in pushes_by_key(sandbox).values())
    before = pushes_by_key(sandbox)
    paid_quietly, posted_loudly, failed_quietly = _clean_sent(erp_db[1], db_store, 3)
    set_erp(erp_db[0], paid_quietly, move_updated_at=False, status="PAID")
    set_erp(erp_db[0], posted_loudly, move_updated_at=True, status="POSTED")
    set_erp(
        erp_db[0],
        failed_quietly,
        move_updated_at=False,
        erp_error_message=ERROR["message"],
        erp_error_status=ERROR["status"],
        erp_error_exception=ERROR["exception"],
    )

    summary = await status_sync(db_settings, db_store, own.mapping)

    new = sandbox.state.pushes()[sum(before.values()) :]
    bodies = {push.invoice_id: push.body for push in new}
    assert sorted(bodies) == sorted([paid_quietly, posted_loudly, failed_quietly])
    assert bodies[paid_quietly]["invoice_status"] == "PAID"
    assert bodies[paid_quietly]["appzen_invoice_state"] == "CREATED"
    assert bodies[posted_loudly]["invoice_status"] == "POSTED"
    assert bodies[failed_quietly]["appzen_invoice_state"] == "ERROR"
    assert bodies[failed_quietly]["error_data"] == ERROR
    assert summary.status == "succeeded"
    assert summary.counts["status_read"] == 60
    assert summary.counts["status_changed"] == 3
    assert summary.counts["pushed"] + summary.counts["pushed_error"] == 3

    again = await status_sync(db_settings, db_store, own.mapping)
    await sync(db_settings, db_store, own.mapping)  # stages the loud change with the same status
    after_sync = await status_sync(db_settings, db_store, own.mapping)

    assert len(sandbox.state.pushes()) == sum(before.values()) + 3
    assert again.counts["pushed"] + again.counts["pushed_error"] == 0
    assert after_sync.counts["pushed"] + after_sync.counts["pushed_error"] == 0


async def test_two_status_syncs_at_once_never_push_a_change_twice(
    db_settings: Settings, sandbox: SandboxServer, erp_db: Erp, db_store: StagingStore, own: Project
) -> None:
    await sync(db_settings, db_store, own.mapping)
    url = db_settings.staging_database_url.get_secret_value()

    with StagingStore.open(url) as other:
        runs = await asyncio.gather(
            status_sync(db_settings, db_store, own.mapping),
            status_sync(db_settings, other, own.mapping),
        )

    pushed = pushes_by_key(sandbox)
    assert pushed, "the first status-sync pushes every acknowledged invoice"
    assert max(pushed.values()) == 1
    assert sum(r.counts["pushed"] + r.counts["pushed_error"] for r in runs) == len(pushed)
    assert all(r.status == "succeeded" for r in runs)


async def test_a_dry_run_lists_what_would_be_pushed_and_sends_nothing(
    db_settings: Settings, sandbox: SandboxServer, erp_db: Erp, db_store: StagingStore, own: Project
) -> None:
    await sync(db_settings, db_store, own.mapping)
    await status_sync(db_settings, db_store, own.mapping)
    paid, failed = _clean_sent(erp_db[1], db_store, 2)
    set_erp(erp_db[0], paid, move_updated_at=False, status="PAID")
    set_erp(erp_db[0], failed, move_updated_at=False, erp_error_message="Vendor blocked")
    pushed = len(sandbox.state.pushes())

    plan = await status_sync(db_settings, db_store, own.mapping, dry_run=True)

    assert len(sandbox.state.pushes()) == pushed
    assert plan.run_id is None
    assert plan.counts["would_push"] == 2
    listed = {entry["invoice_id"]: entry for entry in plan.planned}
    assert listed[paid]["invoice_status"] == "PAID"
    assert listed[failed]["error_data"] == {"message": "Vendor blocked"}
    staged = db_store.get_invoice("sample_erp", paid)
    assert staged is not None
    assert staged.uuid == listed[paid]["uuid"]
    assert staged.erp_status != "PAID", "a dry run records nothing"
    assert plan.as_dict()["planned"] == plan.planned

    done = await status_sync(db_settings, db_store, own.mapping)
    assert {p.invoice_id for p in sandbox.state.pushes()[pushed:]} == {paid, failed}
    assert done.counts["pushed"] + done.counts["pushed_error"] == 2


async def test_an_incremental_status_read_reads_only_what_changed_since_its_watermark(
    settings: Settings, sandbox: SandboxServer, erp: Erp, store: StagingStore, tmp_path: Path
) -> None:
    watermarked = project(tmp_path / "project", OWN_QUERY_WATERMARKED)
    await sync(settings, store, watermarked.mapping)
    first = await status_sync(settings, store, watermarked.mapping)
    (key,) = _clean_sent(erp[1], store, 1)
    set_erp(erp[0], key, move_updated_at=True, status="PAID")

    second = await status_sync(settings, store, watermarked.mapping)
    third = await status_sync(settings, store, watermarked.mapping)

    assert first.counts["status_read"] == 60
    assert first.watermark is not None
    assert second.counts["status_read"] == 1
    assert second.counts["pushed"] == 1
    assert sandbox.state.pushes()[-1].body["invoice_status"] == "PAID"
    assert third.counts["status_read"] == 0
    assert third.watermark == second.watermark
    assert store.last_watermark("sample_erp", "sync") != second.watermark, "kept apart"


async def test_a_status_source_without_a_column_stops_before_a_run_naming_the_line(
    settings: Settings, store: StagingStore, tmp_path: Path
) -> None:
    query = "SELECT document_no, status AS invoice_state FROM erp_invoice"
    broken = project(tmp_path / "project", OWN_QUERY, query=query)

    with pytest.raises(MappingError) as caught:
        await status_sync(settings, store, broken.mapping)

    text = str(caught.value)
    assert f"{broken.mapping}:" in text
    assert "status.column: no column 'invoice_status' in sql/sample_erp/test_status.sql" in text
    assert "did you mean 'invoice_state'?" in text
    assert "status.error.message: no column 'erp_error_message'" in text
    assert store.list_runs() == []


async def test_the_sample_erp_payments_reach_appzen_with_a_standalone_status_sync(
    db_settings: Settings, sandbox: SandboxServer, erp_db: Erp, db_store: StagingStore
) -> None:
    await sync(db_settings, db_store, SHIPPED)
    await status_sync(db_settings, db_store, SHIPPED)
    before = len(sandbox.state.pushes())
    paid = pay(erp_db[0], count=3)
    touched = touch(erp_db[0], count=2, seed=3)  # moves updated_at, after the payments
    moved = {t.document_no: t.after for t in touched.touched if t.change == "status"}
    assert len(paid.document_nos) == 3
    assert moved

    summary = await status_sync(db_settings, db_store, SHIPPED)
    again = await status_sync(db_settings, db_store, SHIPPED)

    new = {p.invoice_id: p.body["invoice_status"] for p in sandbox.state.pushes()[before:]}
    sent = {row.invoice_id for row in db_store.invoices_in_state("sample_erp", "sent", 1_000)}
    changed = dict.fromkeys(paid.document_nos, "PAID") | moved
    expected = {key: status for key, status in changed.items() if key in sent}
    assert len(expected) >= 2
    assert new == expected
    assert len(sandbox.state.pushes()) == before + len(expected)
    assert summary.counts["status_read"] == len(paid.document_nos) + len(touched.touched)
    assert again.counts["status_read"] == 0
    assert again.counts["pushed"] == 0
