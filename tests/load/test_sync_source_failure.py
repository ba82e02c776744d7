"""The source fails (the ERP down, a broken query, an export that cannot be read): the run is
recorded ``failed`` with the one-line reason (no password in it), its reports are written, and
what was read before the failure is delivered as usual; nothing is written off as failed and
the next run, once the source reads, sends the rest. The operator's view (exit code, ``runs``)
is tests/cli/test_source_failure.py."""

from __future__ import annotations

import asyncio
import csv
import shutil
import socket
from pathlib import Path

from pydantic import SecretStr

from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import status as status_job
from pipeline.jobs.status import StatusOptions
from pipeline.load.sync import SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary
from tests.cli.support import FLAT_COLUMNS, invoice_row
from tests.load.sync_helpers import MAPPING, REPO, options, run_sync, tuned

PASSWORD = "s3cret-erp-Pa55"


def assert_failed_run(summary: RunSummary, store: StagingStore, *phrases: str) -> str:
    """The run is recorded ``failed`` with the summary's one line as its reason, names
    ``phrases``, and has its reports; the reason."""
    assert summary.status == "failed", summary.as_dict()
    assert summary.fatal is not None
    assert summary.reason == summary.fatal
    assert "\n" not in summary.fatal
    for phrase in phrases:
        assert phrase in summary.fatal, summary.fatal
    assert summary.run_id is not None
    record = store.get_run(summary.run_id)
    assert record is not None
    assert (record.status, record.reason, record.finished_at is not None) == (
        "failed",
        summary.fatal,
        True,
    )
    assert sorted(summary.reports) == ["csv", "html"]
    html = Path(summary.reports["html"]).read_text("utf-8")
    assert "status-failed" in html
    assert summary.failed == 0, "nothing written off as failed"
    return summary.fatal


def test_a_removed_sqlite_erp_leaves_a_failed_run_with_the_reason(
    settings: Settings, store: StagingStore, sandbox: SandboxServer
) -> None:
    assert settings.erp_database_url is not None
    erp_file = Path(settings.erp_database_url.get_secret_value().removeprefix("sqlite:///"))
    moved = erp_file.rename(erp_file.with_suffix(".away"))

    summary = run_sync(options(), settings, store)

    assert_failed_run(summary, store, str(erp_file), "does not exist")
    assert sandbox.state.invoices() == {}
    assert store.last_watermark("sample_erp", "sync") is None

    moved.rename(erp_file)  # the ERP is back: the next run sends everything
    again = run_sync(options(), settings, store)
    assert again.status == "succeeded", again.as_dict()
    assert again.counts["created"] > 0


def test_an_unreachable_postgresql_erp_leaves_a_failed_run_without_its_password(
    settings: Settings, store: StagingStore, sandbox: SandboxServer
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])  # closed once the block ends
    url = f"postgresql+psycopg://etl:{PASSWORD}@127.0.0.1:{port}/erp"
    down = tuned(settings, erp_database_url=SecretStr(url))

    summary = run_sync(options(), down, store)

    reason = assert_failed_run(summary, store, f"127.0.0.1:{port}", "cannot connect")
    assert PASSWORD not in reason
    assert PASSWORD not in Path(summary.reports["html"]).read_text("utf-8")
    assert sandbox.state.invoices() == {}


def test_a_broken_query_leaves_a_failed_run_naming_the_query(
    settings: Settings, store: StagingStore, sandbox: SandboxServer, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(REPO / "sql" / "sample_erp", project / "sql" / "sample_erp")
    (project / "sql" / "sample_erp" / "extract.sql").write_text("SELECT * FROM no_such_table\n")

    summary = run_sync(options(project_dir=project), settings, store)

    assert_failed_run(summary, store, "sql/sample_erp/extract.sql", "no_such_table")
    assert sandbox.state.invoices() == {}


def test_an_export_broken_part_way_delivers_what_was_read_and_fails_the_run(
    settings: Settings, store: StagingStore, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Chunks of 4 rows; row 14 of the file (invoice 13) has a cell too many."""
    mapping = tmp_path / "mappings" / "flat_csv.yaml"
    mapping.parent.mkdir()
    text = (REPO / "mappings" / "flat_csv.yaml").read_text("utf-8")
    mapping.write_text(text.replace("  encoding: utf-8\n", "  encoding: utf-8\n  chunk_rows: 4\n"))
    export = tmp_path / "samples" / "flat_ap_export.csv"
    export.parent.mkdir()
    keys = [f"PART-{n:02}" for n in range(1, 21)]
    with export.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(FLAT_COLUMNS)
        for key in keys:
            row = [invoice_row(key)[column] for column in FLAT_COLUMNS]
            writer.writerow([*row, "surplus"] if key == "PART-13" else row)
    job = SyncOptions(mapping, project_dir=tmp_path)

    summary = run_sync(job, settings, store)

    assert_failed_run(summary, store, "flat_ap_export.csv:14")
    delivered = sorted(sandbox.state.invoices())
    assert delivered == keys[: len(delivered)], "in order, none past the failure"
    assert len(delivered) >= 11, "what was read before the bad row went on"  # 12 may wait
    assert summary.counts["created"] == len(delivered)

    export.write_text(export.read_text("utf-8").replace(";surplus", ""), "utf-8")
    again = run_sync(job, settings, store)
    assert again.status == "succeeded", again.as_dict()
    sent, unchanged = again.counts["created"], again.counts["unchanged"]
    assert (sent, unchanged) == (20 - len(delivered), len(delivered))
    assert sorted(sandbox.state.invoices()) == keys


def test_status_sync_with_the_erp_down_is_a_failed_run_and_pushes_nothing(
    settings: Settings, store: StagingStore, sandbox: SandboxServer
) -> None:
    assert run_sync(options(), settings, store).status == "succeeded"
    assert settings.erp_database_url is not None
    erp_file = Path(settings.erp_database_url.get_secret_value().removeprefix("sqlite:///"))
    erp_file.unlink()
    before = sandbox.state.response_counts()

    summary = asyncio.run(status_job.run(settings, store, StatusOptions(MAPPING)))

    assert_failed_run(summary, store, str(erp_file), "does not exist")
    assert summary.flow == "status_sync"
    assert sandbox.state.response_counts() == before, "nothing pushed"
