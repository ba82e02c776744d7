"""write_reports end to end: real mapping-engine failures, the staging store, files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.failures import RowFailure
from pipeline.jobs.reports import write_run_reports
from pipeline.mapping import RejectedInvoice
from pipeline.mapping.loader import load_mapping
from pipeline.report import ReportError, ReportPaths, report_rows, write_reports
from pipeline.staging import StagingStore
from tests.mapping.conftest import MINIMAL, chunk, row, run
from tests.report.helpers import Page, failure, make_run, read_csv, stored


def _engine_failures(tmp_path: Path) -> list[RowFailure]:
    path = tmp_path / "mappings" / "m.yaml"
    path.parent.mkdir()
    path.write_text(MINIMAL, encoding="utf-8")
    rows = [
        row("A1", date="31-02-2021"),
        row("A2", cur="EURO"),
        row("A3", sup=""),
        row("A4", total="12,5"),
        row("A5"),
    ]
    results = run(load_mapping(path), [chunk(rows, origin="ap_export.csv")])
    return [f for r in results if isinstance(r, RejectedInvoice) for f in r.failures]


def test_real_engine_failures_all_explain_themselves(tmp_path: Path) -> None:
    engine = _engine_failures(tmp_path)
    assert {f.rule for f in engine} >= {"date_format", "currency", "required", "decimal"}
    rows = report_rows([stored(f) for f in engine])
    for line in rows:
        assert line["fix hint"], f"no fix hint for rule {line['rule']}"
        assert line["source location"].startswith("ap_export.csv:")
        assert line["stage"] == "mapping"
    by_rule = {line["rule"]: line for line in rows}
    assert by_rule["required"]["field path"] == "supplier_id"
    assert by_rule["currency"]["offending value"] == "EURO"


def test_reports_from_the_staging_store(tmp_path: Path) -> None:
    store = StagingStore.open(f"sqlite:///{tmp_path / 'staging.db'}")
    try:
        run_id = store.start_run("nightly-sync", "acme_ap", {"since": "2025-02-28"}, False)
        engine = _engine_failures(tmp_path)
        store.record_failures(run_id, "acme_ap", engine)
        store.record_failures(
            run_id,
            "acme_ap",
            [failure("appzen", "appzen_400", "invalid entity", http_status=400, attempts=1)],
        )
        store.finish_run(run_id, status="failed", counts={"sent": 1, "failed": 5})
        record = store.get_run(run_id)
        assert record is not None
        paths = write_reports(record, store.failures_for_run(run_id), tmp_path / "out")
    finally:
        store.close()
    header, *lines = read_csv(paths.csv)
    first, last = header.index("first seen"), header.index("last seen")
    assert len(lines) == len(engine) + 1
    assert {line[1] for line in lines} == {"mapping", "appzen"}
    assert all(line[0] == str(run_id) for line in lines)
    assert all(line[first].endswith("Z") and line[last].endswith("Z") for line in lines)
    page = Page(paths.html.read_text(encoding="utf-8"))
    invoices = len({f.source_key for f in [*engine, failure()]})
    assert f"Run {run_id}: {invoices} invoices failed ({len(engine) + 1} rows)" in page.words
    assert "Mapping acme_ap" in page.words


def test_files_are_named_after_the_run_and_the_directory_is_created(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    paths = write_reports(make_run(7), [stored(failure(), run_id=7)], out)
    assert paths == ReportPaths(csv=out / "run-7-failures.csv", html=out / "run-7-failures.html")
    assert sorted(p.name for p in out.iterdir()) == ["run-7-failures.csv", "run-7-failures.html"]


def test_rewriting_replaces_the_reports(tmp_path: Path) -> None:
    write_reports(make_run(), [stored(failure(source_key="OLD"))], tmp_path)
    paths = write_reports(make_run(), [], tmp_path)
    assert "OLD" not in paths.csv.read_text(encoding="utf-8-sig")
    assert "no failed rows" in paths.html.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run-42-failures.csv",
        "run-42-failures.html",
    ]


def test_failures_of_another_run_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"run 42 was given failures of run\(s\) \[41\]"):
        write_reports(make_run(), [stored(failure(), run_id=41)], tmp_path)


def test_an_out_dir_that_is_a_file_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "reports"
    blocker.write_text("not a directory", encoding="utf-8")
    with pytest.raises(ReportError, match=r"cannot create the report directory .*reports"):
        write_reports(make_run(), [], blocker)


def test_a_report_path_taken_by_a_directory_leaves_no_temporary_file(tmp_path: Path) -> None:
    (tmp_path / "run-42-failures.csv").mkdir()
    with pytest.raises(ReportError, match=r"cannot write the report .*run-42-failures\.csv"):
        write_reports(make_run(), [], tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-42-failures.csv"]


def test_a_sending_runs_report_links_where_its_mapping_says(tmp_path: Path) -> None:
    mapping = tmp_path / "mappings" / "m.yaml"
    mapping.parent.mkdir()
    mapping.write_text(MINIMAL + 'document_url: "https://erp.example/ap/{invoice_id}"\n', "utf-8")
    store = StagingStore.open(f"sqlite:///{tmp_path / 'staging.db'}")
    try:
        run_id = store.start_run("sync", "m", {"mapping": str(mapping)}, False)
        store.record_failures(run_id, "m", [failure(source_key="51/7")])
        store.finish_run(run_id, status="succeeded", counts={"failed": 1})
        record = store.get_run(run_id)
        assert record is not None
        linked = write_run_reports(store, record, tmp_path / "out").html.read_text("utf-8")
        mapping.unlink()  # a mapping that cannot be read any more: the report, without links
        plain = write_run_reports(store, record, tmp_path / "plain").html.read_text("utf-8")
    finally:
        store.close()
    assert 'href="https://erp.example/ap/51%2F7"' in linked
    assert "erp.example" not in plain
    assert "51/7" in plain
