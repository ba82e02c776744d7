"""Hostile systems around the pipeline, end to end through ``appzen-etl``: a source query that fails
half-way, a staging database locked by another process or out of space, and the fatal errors as
the installed console script prints them (one line, exit 2, no traceback). Each leaves staging
consistent: nothing recorded as sent that AppZen did not acknowledge, and a rerun finishes."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.devkit.sample_erp import generate, invoice_line
from pipeline.devkit.sandbox import SandboxServer
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.settings import load_settings
from pipeline.staging import StagingStore
from tests.cli.support import invoice_row
from tests.reliability.checks import STATES
from tests.reliability.hostile_cases import export
from tests.reliability.operator import EXPORT, MAPPING, Outcome, Project
from tests.reliability.world import REPO, poll, settle

pytestmark = pytest.mark.reliability

BOMB_KEY = 30
"""Rows of ERP invoices from this key on make the query fail (SQLite: malformed JSON)."""
CHUNK_ROWS = 20


def assert_one_line(outcome: Outcome, code: int = 2, prefix: str = "error: ") -> str:
    """A fatal error as the user sees it: exit 2, one ``error:`` (or ``prefix``) line, no
    traceback; the line."""
    assert outcome.code == code, outcome
    assert outcome.crashed is None, outcome.crashed
    assert "Traceback" not in outcome.stdout + outcome.stderr, outcome
    lines = outcome.messages.splitlines()
    assert len(lines) == 1, outcome
    assert lines[0].startswith(prefix), outcome
    return lines[0]


def acked_only(store: StagingStore, mapping: str, sandbox: SandboxServer) -> dict[str, str]:
    """Every staged uuid is AppZen's (nothing sent without an ack); ``{invoice_id: uuid}``."""
    stored = sandbox.state.invoices()
    uuids: dict[str, str] = {}
    for state in STATES:
        for record in store.invoices_in_state(mapping, state, 100_000):
            if record.uuid is None:
                assert record.state != "sent", record
                assert record.send_count == 0, record
                continue
            assert stored[record.invoice_id].uuid == record.uuid, record
            uuids[record.invoice_id] = record.uuid
    return uuids


# --- a source query that fails half-way --------------------------------------------------------
def erp_project(root: Path, base_url: str) -> Project:
    """The sample ERP mapping with a query that breaks on invoice ``BOMB_KEY`` (read in chunks
    of 20 rows, so some chunks are mapped and sent first)."""
    project = Project.create(root, base_url, BATCH_SIZE="10")
    url = f"sqlite:///{root / 'erp.db'}"
    generate(url, invoices=50, seed=13)
    project.env["ERP_DATABASE_URL"] = url
    mapping = (REPO / "mappings" / "sample_erp.yaml").read_text(encoding="utf-8")
    mapping = mapping.replace(
        "query: sql/sample_erp/extract.sql", f"query: sql/extract.sql\n  chunk_rows: {CHUNK_ROWS}"
    )
    project.write("mappings/sample_erp.yaml", mapping)
    query = (REPO / "sql" / "sample_erp" / "extract.sql").read_text(encoding="utf-8")
    bomb = f"    CASE WHEN h.invoice_key >= {BOMB_KEY} THEN json('not json') END AS bomb,\n"
    query = query.replace("SELECT\n", "SELECT\n" + bomb, 1)
    # Without ORDER BY SQLite streams the join row by row (each invoice's lines stay together),
    # so the error comes when the cursor reaches the first bad row, not before the first row.
    project.write("sql/extract.sql", re.sub(r"ORDER BY [^\n]*", "", query))
    status = (REPO / "sql" / "sample_erp" / "status.sql").read_text(encoding="utf-8")
    project.write("sql/sample_erp/status.sql", status)  # the status read sync ends with
    return project


def rows_before_bomb(erp_url: str) -> int:
    engine = sa.create_engine(erp_url)
    try:
        with engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(invoice_line)
            good = conn.execute(count.where(invoice_line.c.invoice_key < BOMB_KEY)).scalar_one()
    finally:
        engine.dispose()
    return good // CHUNK_ROWS * CHUNK_ROWS


def test_a_query_failing_half_way_stops_the_run_after_what_was_acknowledged(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    project = erp_project(tmp_path / "erp", sandbox.base_url)
    erp_url = project.env["ERP_DATABASE_URL"]

    outcome = project.run("sync", "-m", "mappings/sample_erp.yaml")

    line = assert_one_line(outcome, prefix="stopped: ")
    reason = (
        f"sql/extract.sql on {erp_url}: the query failed after "
        f"{rows_before_bomb(erp_url)} rows: malformed JSON; fix the query in sql/extract.sql "
        "(try it in an SQL client) or the database"
    )
    assert line == f"stopped: {reason}"
    settle(sandbox)
    with project.store() as store:
        [run] = store.list_runs()
        assert (run.status, run.reason) == ("failed", reason)  # a run record says why
        sent = acked_only(store, "sample_erp", sandbox)
        assert sent, "chunks before the bad row were sent"
        unrecorded = set(sandbox.state.invoices()) - set(sent)
        assert not unrecorded, "the batches out when the query failed finished and were recorded"

    shutil.copy(REPO / "sql" / "sample_erp" / "extract.sql", project.root / "sql" / "extract.sql")
    fixed = project.run("sync", "-m", "mappings/sample_erp.yaml", "--json")

    assert fixed.code == 1, fixed  # the sample ERP's dirty invoices fail mapping
    [synced, _] = json.loads(fixed.stdout)["runs"]
    assert synced["counts"]["unchanged"] == len(sent)
    # the stopped run's answers were lost, it did not crash
    assert synced["counts"].get("resent_after_lost_answer", 0) == len(unrecorded)
    assert "resent_after_crash" not in synced["counts"]
    with project.store() as store:
        assert acked_only(store, "sample_erp", sandbox).items() >= sent.items()
        assert all(run.status == "succeeded" for run in store.list_runs()[:2])


# --- staging locked by another process ---------------------------------------------------------
def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's write transaction on the staging file."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


LOCKED_HINT = (
    "another process held the write lock longer than the busy timeout; let it finish, or raise "
    "the busy timeout (SQLite: add ?timeout=SECONDS to STAGING_DATABASE_URL)"
)


def test_a_locked_staging_database_is_one_clear_line_and_sends_nothing_unrecorded(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    project = Project.create(tmp_path / "p", sandbox.base_url)
    path = project.root / "staging.db"
    url = f"sqlite:///{path}?timeout=0.3"
    project.env["STAGING_DATABASE_URL"] = url
    project.write(EXPORT, export(invoice_row("INV-1")))
    assert project.run("sync", "-m", MAPPING).code == 0
    project.write(EXPORT, export(invoice_row("INV-1"), invoice_row("INV-2"), invoice_row("INV-3")))

    holder = hold_write_lock(path)
    try:
        at_start = project.run("sync", "-m", MAPPING)
    finally:
        holder.rollback()

    assert assert_one_line(at_start) == (
        f"error: staging database {url}: migrating the schema failed: database is locked "
        f"({LOCKED_HINT})"
    )
    assert set(sandbox.state.invoices()) == {"INV-1"}, "nothing is sent before staging answers"

    mid_run = locked_while_posting(project, sandbox, holder, "sync", "-m", MAPPING)

    assert assert_one_line(mid_run) == (
        f"error: staging database {url}: recording 2 outcomes for 'flat_csv' failed: database "
        f"is locked ({LOCKED_HINT})"
    )
    first = sandbox.state.invoices()["INV-1"].uuid
    with project.store() as store:
        assert acked_only(store, "flat_csv", sandbox) == {"INV-1": first}, (
            "AppZen took INV-2 and INV-3, but staging recorded no ack for them"
        )

    project.write(EXPORT, export(invoice_row("INV-1", status="PAID")))
    pushing = locked_while_posting(project, sandbox, holder, "sync", "-m", MAPPING, skip=1)

    assert assert_one_line(pushing) == (
        f"error: staging database {url}: recording 1 status pushes failed: database is locked "
        f"({LOCKED_HINT})"
    )
    holder.close()
    again = project.run("status-sync", "-m", MAPPING, "--json")
    assert again.code == 0, again
    [pushed] = json.loads(again.stdout)["runs"]
    counts = {k: v for k, v in pushed["counts"].items() if k != "budget_used"}
    assert counts == {"pushed": 1, "repushed_after_crash": 1, "requests": 1, "retries": 0}
    statuses = [push.body["invoice_status"] for push in sandbox.state.pushes()]
    assert statuses == ["APPROVED", "PAID", "PAID"], "pushed twice, and counted"


def locked_while_posting(
    project: Project,
    sandbox: SandboxServer,
    holder: sqlite3.Connection,
    *args: str,
    skip: int = 0,
) -> Outcome:
    """Run ``appzen-etl *args`` and take the staging write lock while the sandbox holds back the
    answer to its request number ``skip + 1`` (400 ms of latency)."""
    admitted = len(sandbox.state.accepted_times()) + skip
    sandbox.state.configure(latency_ms=400)

    def lock() -> None:
        poll(lambda: len(sandbox.state.accepted_times()) > admitted, 30, "the run posting")
        holder.execute("BEGIN IMMEDIATE")

    locker = threading.Thread(target=lock)
    locker.start()
    try:
        return project.run(*args)
    finally:
        locker.join()
        holder.rollback()
        sandbox.state.configure(latency_ms=0.0)


# --- staging out of space ----------------------------------------------------------------------
FILE_LIMIT = 300_000
"""Bytes any file the command writes may reach (RLIMIT_FSIZE): the WAL outgrows it while the
batch's outcomes are recorded, after AppZen acknowledged them."""


def test_a_full_staging_disk_loses_no_ack_and_the_rerun_counts_the_resends(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    project = Project.create(tmp_path / "p", sandbox.base_url)
    invoices = [invoice_row(f"INV-{n:03d}", line_text="x" * 4_000) for n in range(80)]
    project.write_rows(invoices)
    limit = (
        "import resource, signal\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_LIMIT}, {FILE_LIMIT}))"
    )

    outcome = project.spawn("sync", "-m", MAPPING, prelude=limit)

    assert assert_one_line(outcome) == (
        f"error: staging database {project.staging_url}: recording 80 outcomes for 'flat_csv' "
        "failed: disk I/O error (the staging database file could not be written (disk full, a "
        "file-size limit or a failing disk); fix that and rerun (nothing was committed by the "
        "failed transaction))"
    )
    assert len(sandbox.state.invoices()) == 80, "AppZen acknowledged every invoice"
    lease_over = datetime.now(UTC) + timedelta(seconds=301)  # the dead run's claims expired
    with StagingStore.open(project.staging_url, now=lambda: lease_over) as store:
        assert acked_only(store, "flat_csv", sandbox) == {}, "no ack was recorded"
        assert store.count_by_state("flat_csv") == {"pending": 80}
    with StagingStore.open(project.staging_url, now=lambda: lease_over) as store:
        rerun = _rerun(project, store)
        # the run stopped on the staging error (interrupted): its answers were lost, no crash
        resent = rerun.get("resent_after_lost_answer")
        assert (rerun.get("created"), rerun.get("updated"), resent) == (None, 80, 80), rerun
        assert "resent_after_crash" not in rerun
        assert len(acked_only(store, "flat_csv", sandbox)) == 80
    assert {i.versions for i in sandbox.state.invoices().values()} == {2}


def _rerun(project: Project, store: StagingStore) -> dict[str, int]:
    """A sync by the library on ``store`` (whose clock says the dead run's lease is over)."""
    settings = load_settings(
        appzen_base_url=project.env["APPZEN_BASE_URL"],
        staging_database_url=project.staging_url,
        reports_dir=project.root / "reports",
    )
    options = SyncOptions(project.root / MAPPING)
    summary = asyncio.run(SyncJob(options, settings, store=store).run())
    return dict(summary.counts)


# --- the real console script ----------------------------------------------------------------
def test_the_console_script_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    """The installed ``appzen-etl`` itself (not the in-process runner the table uses)."""
    project = Project.create(tmp_path / "p", "http://127.0.0.1:9/dictionary-data-services")
    project.write(EXPORT, export(invoice_row("INV-1"), "INV-2;" * 24))

    outcome = project.spawn("sync", "-m", MAPPING)

    assert assert_one_line(outcome, prefix="stopped: ") == (
        f"stopped: {EXPORT}:3: row has 25 cells but the header has 23; check the delimiter (';') "
        "and quoting ('\"') of that row, or set `delimiter:` / `quotechar:` for this source"
    )
    with project.store() as store:
        assert [run.status for run in store.list_runs()] == ["failed"]
        assert store.count_by_state("flat_csv") == {}, "nothing was staged"
