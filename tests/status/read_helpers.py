"""Shared steps of the status-read tests: a project whose sample-ERP mapping declares a status
read, ERP changes that move ``updated_at`` or not, and the jobs run as the CLI runs them."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from pipeline.devkit.sample_erp import invoice
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import status as status_job
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary
from tests.conftest import REPO

STATUS_QUERY = """
-- The sample ERP's statuses only: key, status and error columns, and when the row last changed.
SELECT document_no,
       status AS invoice_status,
       erp_error_message,
       erp_error_status,
       erp_error_exception,
       updated_at
FROM erp_invoice
WHERE (:since IS NULL OR updated_at > :since)
ORDER BY document_no
"""

STATUS_BLOCK = """status:
  column: invoice_status # PARKED, APPROVED, POSTED, PAID
  error: # a non-blank message: the ERP failed to take the invoice (status-sync ERROR)
    message: erp_error_message
    status: erp_error_status
    exception: erp_error_exception
"""


@dataclass(frozen=True, slots=True)
class Project:
    """A project folder: the sample ERP mapping (with ``status_lines`` added to its status
    block) and its queries; ``mapping`` is the file the jobs take."""

    root: Path
    mapping: Path


def project(folder: Path, status_lines: str, query: str = STATUS_QUERY) -> Project:
    """The shipped sample-ERP mapping copied into ``folder`` with a status read of its own."""
    sql = folder / "sql" / "sample_erp"
    sql.mkdir(parents=True)
    shutil.copy(REPO / "sql" / "sample_erp" / "extract.sql", sql / "extract.sql")
    (sql / "test_status.sql").write_text(query, encoding="utf-8")
    text = (REPO / "mappings" / "sample_erp.yaml").read_text(encoding="utf-8")
    start = text.index("status:\n")
    end = text.index("\nheader:")
    text = text[:start] + STATUS_BLOCK + status_lines + text[end:]
    mappings = folder / "mappings"
    mappings.mkdir()
    path = mappings / "sample_erp.yaml"
    path.write_text(text, encoding="utf-8")
    return Project(folder, path)


OWN_QUERY = "  source: {kind: sql, query: sql/sample_erp/test_status.sql}\n"
OWN_QUERY_WATERMARKED = OWN_QUERY + "  watermark_column: updated_at\n"


async def sync(settings: Settings, store: StagingStore, mapping: Path) -> RunSummary:
    """One incremental sync, its own status-sync left out."""
    return await SyncJob(SyncOptions(mapping), settings, store=store).run()


async def status_sync(
    settings: Settings, store: StagingStore, mapping: Path, *, dry_run: bool = False
) -> RunSummary:
    """One standalone status-sync run, as ``appzen-etl status-sync`` runs it."""
    options = status_job.StatusOptions(mapping, dry_run=dry_run)
    return await status_job.run(settings, store, options)


def set_erp(url: str, document_no: str, *, move_updated_at: bool, **values: object) -> None:
    """Change one ERP invoice; its ``updated_at`` moves past every other only if asked (a status
    kept in another table, or an ERP job that does not touch the header, leaves it)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if move_updated_at:
                latest = conn.execute(sa.select(sa.func.max(invoice.c.updated_at))).scalar_one()
                values["updated_at"] = latest + timedelta(minutes=1)
            where = invoice.c.document_no == document_no
            changed = conn.execute(invoice.update().where(where).values(**values))
            assert changed.rowcount == 1, f"no ERP invoice {document_no}"
    finally:
        engine.dispose()


def pushes_by_key(sandbox: SandboxServer) -> Counter[str]:
    """How many status-sync calls the sandbox received per invoice."""
    return Counter(push.invoice_id for push in sandbox.state.pushes())
