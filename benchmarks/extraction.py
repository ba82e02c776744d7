"""Row 9 (and row 5's baseline): the pipeline's extraction beside a plain read of the same rows.

The baseline is what a hand-written script gets from the database: the sample ERP's extraction
query (``sql/sample_erp/extract.sql``, every invoice: ``:since``/``:until`` NULL) read through a
server-side cursor with the driver alone (psycopg's named cursor; PyMySQL's ``SSCursor``), in
fetches of 20,000 rows, nothing done with the rows. The pipeline's figure is a full dry-run sync
(``SyncOptions(dry_run=True, incremental=False)``: extract, map, validate, serialize, hash, plan
every batch against an empty SQLite staging; nothing sent) of the same query. Both best of
``repeats``, measured alternately in one process.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pymysql.cursors
from sqlalchemy.engine import make_url

from benchmarks.report import Figure
from benchmarks.runs import REPO, SAMPLE_MAPPING
from pipeline.jobs.store import open_store
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.settings import load_settings

TARGET = 0.6
FETCH = 20_000
QUERY = REPO / "sql" / "sample_erp" / "extract.sql"


@dataclass(frozen=True, slots=True)
class Read:
    """A timed read: rows (or invoices) and seconds."""

    count: int
    seconds: float


def raw_read(url: str) -> Read:
    """Every row of the extraction query through the driver's server-side cursor, timed."""
    started = time.perf_counter()
    rows = _raw_pg(url) if url.startswith("postgresql") else _raw_mysql(url)
    return Read(rows, time.perf_counter() - started)


def _query(null: str) -> str:
    text = QUERY.read_text(encoding="utf-8").strip().rstrip(";")
    return text.replace(":since", null).replace(":until", null)


def _raw_pg(url: str) -> int:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rows = 0
    with psycopg.connect(conninfo) as conn, conn.cursor(name="raw_read") as cursor:
        cursor.itersize = FETCH
        cursor.execute(_query("CAST(NULL AS timestamp)").encode())
        while part := cursor.fetchmany(FETCH):
            rows += len(part)
    return rows


def _raw_mysql(url: str) -> int:
    parsed = make_url(url)
    conn = pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=parsed.database,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.SSCursor,
    )
    rows = 0
    try:
        with conn.cursor() as cursor:
            cursor.execute(_query("NULL"))
            while part := cursor.fetchmany(FETCH):
                rows += len(part)
    finally:
        conn.close()
    return rows


def dry_run(url: str, folder: Path) -> Read:
    """A full dry-run sync of the sample ERP at ``url`` (fresh SQLite staging), timed."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / "dry-run.db"
    staging.unlink(missing_ok=True)
    settings = load_settings(
        erp_database_url=url,
        staging_database_url=f"sqlite:///{staging}",
        reports_dir=folder / "reports",
    )
    options = SyncOptions(SAMPLE_MAPPING, incremental=False, dry_run=True)
    with open_store(settings) as store:
        started = time.perf_counter()
        summary = asyncio.run(SyncJob(options, settings, store=store).run())
        seconds = time.perf_counter() - started
    if summary.fatal:
        raise RuntimeError(f"benchmark dry run stopped: {summary.fatal}")
    return Read(int(summary.counts["extracted"]), seconds)


def row9(row: str, database: str, url: str, folder: Path, repeats: int = 3) -> Figure:
    """Extraction + map + plan of every invoice ÷ the raw read of the same rows (higher: better)."""
    raws, runs = [], []
    for _ in range(repeats):
        raws.append(raw_read(url))
        runs.append(dry_run(url, folder))
    raw = min(raws, key=lambda r: r.seconds)
    run = min(runs, key=lambda r: r.seconds)
    ratio = raw.seconds / run.seconds
    detail: dict[str, Any] = {
        "raw_seconds": [r.seconds for r in raws],
        "run_seconds": [r.seconds for r in runs],
        "rows": raw.count,
        "invoices": run.count,
    }
    return Figure(
        row=row,
        what=f"{database}: extraction + map + plan (dry-run sync) of {run.count:,} invoices ÷ "
        "a raw server-side-cursor read of the same rows",
        measured=f"{run.seconds:.2f} s ({run.count / run.seconds:,.0f} invoices/s)",
        baseline=f"raw read of {raw.count:,} rows: {raw.seconds:.2f} s "
        f"({run.count / raw.seconds:,.0f} invoices/s)",
        ratio=ratio,
        target=f">= {TARGET} of the raw read" if database == "PostgreSQL" else "reported",
        met=ratio >= TARGET if database == "PostgreSQL" else None,
        detail=detail,
    )
