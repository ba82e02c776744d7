"""Shared steps of the status-sync and reconciliation tests: sync the sample ERP, read it back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipeline.devkit.sample_erp import invoice
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.retry import RetryPolicy
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary
from tests.conftest import REPO

MAPPING = REPO / "mappings" / "sample_erp.yaml"
MAPPING_NAME = "sample_erp"
UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass(frozen=True, slots=True)
class ErpState:
    """An invoice's ERP-side state as status-sync should report it."""

    status: str
    error: dict[str, str] | None


@contextmanager
def open_store(settings: Settings) -> Iterator[StagingStore]:
    """The test's staging store (SQLite in its tmp_path), migrated; closed on exit."""
    with StagingStore.open(settings.staging_database_url.get_secret_value()) as opened:
        yield opened


async def sync(settings: Settings, store: StagingStore) -> RunSummary:
    """One incremental sync of the sample ERP (no status-sync)."""
    return await SyncJob(SyncOptions(MAPPING), settings, store=store).run()


async def status_sync(
    settings: Settings,
    store: StagingStore,
    *,
    dry_run: bool = False,
    dispatcher: Dispatcher | None = None,
) -> RunSummary:
    """One status-sync run of the sample ERP's mapping."""
    return await run_status_sync(
        settings, store, MAPPING_NAME, dry_run=dry_run, dispatcher=dispatcher
    )


def quick_retries(settings: Settings, attempts: int = 10) -> Dispatcher:
    """A dispatcher as runs build it, with short retry waits (server errors, not quota)."""
    policy = RetryPolicy(attempts, base_delay=0.02, max_delay=0.2)
    return Dispatcher.from_settings(settings, SYSTEM_CLOCK, policy=policy)


def erp_states(url: str) -> dict[str, ErpState]:
    """``document_no`` → the ERP's status and error, read straight from the sample ERP."""
    columns = (
        invoice.c.document_no,
        invoice.c.status,
        invoice.c.erp_error_message,
        invoice.c.erp_error_status,
        invoice.c.erp_error_exception,
    )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(*columns)).all()
    finally:
        engine.dispose()
    return {
        row.document_no: ErpState(
            row.status,
            {
                "message": row.erp_error_message,
                "status": row.erp_error_status,
                "exception": row.erp_error_exception,
            }
            if row.erp_error_message
            else None,
        )
        for row in rows
    }


def update_erp(url: str, document_no: str, **values: object) -> None:
    """Change one ERP invoice (bumping ``updated_at`` past every other) so a sync picks it up."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            latest = conn.execute(sa.select(sa.func.max(invoice.c.updated_at))).scalar_one()
            stamp = latest + timedelta(minutes=1)
            where = invoice.c.document_no == document_no
            changed = conn.execute(invoice.update().where(where).values(updated_at=stamp, **values))
            assert changed.rowcount == 1, f"no ERP invoice {document_no}"
    finally:
        engine.dispose()


def sent_ids(store: StagingStore) -> set[str]:
    """The invoices staging records as acknowledged."""
    rows = store.invoices_in_state(MAPPING_NAME, "sent", 100_000)
    return {row.invoice_id for row in rows}


def recent_utc(stamp: str, slack: timedelta = timedelta(minutes=5)) -> bool:
    """True for a ``YYYY-MM-DDTHH:MM:SSZ`` stamp within ``slack`` of now."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return abs(datetime.now(UTC) - moment) < slack
