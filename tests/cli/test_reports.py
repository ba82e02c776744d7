"""The failed-row reports a run writes, read back from the files the command printed: one row per
failure stage with what an operator needs to fix it, and hostile source text made harmless."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.report.cells import FORMULA_STARTS
from pipeline.report.worklist import script
from tests.cli.support import (
    FLAT_MAPPING,
    Project,
    Result,
    invoice_row,
    read_csv_report,
    rows_by_key,
    summary_tables,
)

SCRIPT = "<script>alert('x')</script>"
HYPERLINK = '=HYPERLINK("http://evil.example/steal","click me")'
RLO = "\u202e"

ROWS = [
    invoice_row("OK-1"),
    invoice_row("MAP-1", invoice_date="31.02.2024"),
    invoice_row("VAL-1", vat_rate="0,00"),
    invoice_row("REJ-1", supplier_no="V-UNKNOWN"),
    invoice_row("HOST-SCRIPT", invoice_date=SCRIPT),
    invoice_row(HYPERLINK, unit_price="=1+2"),
    invoice_row("+PLUS", net_total="+1+1"),
    invoice_row("-MINUS", net_total="-2+3"),
    invoice_row("@AT", net_total="@SUM(A1:A9)"),
    invoice_row("RTL-1", invoice_date=f"{RLO}4202.90.40"),
]


@dataclass(frozen=True)
class FailingSync:
    """One sync of :data:`ROWS` against a sandbox that does not know supplier V-UNKNOWN."""

    project: Project
    result: Result
    reports: dict[str, Path]
    rows: dict[str, list[dict[str, str]]]
    html: str


@pytest.fixture(scope="module")
def failing_sync(
    sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> FailingSync:
    sandbox_server.state.reset()
    sandbox_server.state.configure(unknown_suppliers=["V-UNKNOWN"])
    try:
        project = Project.create(tmp_path_factory.mktemp("reports"), sandbox_server.base_url)
        project.write_invoices(ROWS)
        result = project.run("sync", "-m", str(FLAT_MAPPING))
    finally:
        sandbox_server.state.reset()
    assert result.code == 1, result
    reports = result.reports()
    rows = rows_by_key(read_csv_report(reports["csv"]))
    return FailingSync(project, result, reports, rows, reports["html"].read_text("utf-8"))


def test_the_run_prints_both_report_paths_and_they_exist(failing_sync: FailingSync) -> None:
    reports = failing_sync.reports
    assert reports["csv"].name.endswith("-failures.csv")
    assert reports["html"].name.endswith("-failures.html")
    assert reports["csv"].is_file()
    assert reports["html"].is_file()
    assert reports["csv"].parent == failing_sync.project.root / "reports"
    assert "OK-1" not in failing_sync.rows


def test_mapping_failure_names_row_field_column_value_and_fix(failing_sync: FailingSync) -> None:
    [row] = failing_sync.rows["MAP-1"]
    assert row["stage"] == "mapping"
    assert row["rule"] == "date_format"
    assert row["source location"] == "samples/flat_ap_export.csv:3"
    assert row["field path"] == "invoice_date"
    assert row["source column"] == "invoice_date"
    assert row["offending value"] == "31.02.2024"
    assert "%d.%m.%Y" in row["message"]
    assert row["fix hint"]
    assert "MAP-1" in failing_sync.html


def test_validation_failure_names_the_appzen_field(failing_sync: FailingSync) -> None:
    rows = failing_sync.rows["VAL-1"]
    assert {row["stage"] for row in rows} == {"validation"}
    paths = {row["field path"] for row in rows}
    assert "invoice_lines.0.line_vat_breakdown.0.rate" in paths
    assert {row["source column"] for row in rows} == {"vat_rate"}
    assert all("greater than 0" in row["message"] for row in rows)
    assert "Validation: the mapped invoice breaks AppZen" in failing_sync.html


def test_appzen_rejection_carries_status_code_and_correlation_id(
    failing_sync: FailingSync,
) -> None:
    [row] = failing_sync.rows["REJ-1"]
    assert row["stage"] == "appzen"
    assert row["HTTP status"] == "400"
    assert "V-UNKNOWN" in row["message"]
    assert row["error code"]
    assert len(row["x-correlation-id"]) >= 8
    assert row["attempts"] == "1"
    assert row["x-correlation-id"] in failing_sync.html
    assert "AppZen rejected the invoice" in failing_sync.html


def test_summary_counts_every_stage(failing_sync: FailingSync) -> None:
    tables = summary_tables(failing_sync.result.stdout)
    [sync] = [rows for title, rows in tables.items() if title.startswith("sync · run")]
    assert sync["invoices extracted"] == "10"
    assert sync["created"] == "1"
    assert sync["failed: mapping"] == "7"
    assert sync["failed: validation"] == "1"
    assert sync["failed: AppZen rejected"] == "1"
    assert sync["failed: retries exhausted"] == "0"
    assert sync["rate"].endswith("requests/s")
    assert sync["duration"].endswith(" s")


def test_no_csv_cell_starts_a_formula(failing_sync: FailingSync) -> None:
    cells = [cell for rows in failing_sync.rows.values() for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    [hyperlink] = failing_sync.rows[f"'{HYPERLINK}"]
    assert hyperlink["offending value"] == "'=1+2"
    assert failing_sync.rows["'+PLUS"][0]["offending value"] == "'+1+1"
    assert failing_sync.rows["'-MINUS"][0]["offending value"] == "'-2+3"
    assert failing_sync.rows["'@AT"][0]["offending value"] == "'@SUM(A1:A9)"


def test_html_shows_markup_as_text_and_runs_nothing(failing_sync: FailingSync) -> None:
    page = failing_sync.html
    own = f"<script>{script()}</script>"  # the worklist's, allowed by its hash in the CSP
    assert page.count(own) == 1
    assert "<script" not in page.replace(own, "").lower()
    assert html.escape(SCRIPT, quote=True) in page
    assert html.escape(HYPERLINK, quote=True) in page
    assert 'href="http://evil' not in page
    assert "Content-Security-Policy" in page


def test_right_to_left_marks_are_shown_not_obeyed(failing_sync: FailingSync) -> None:
    [row] = failing_sync.rows["RTL-1"]
    assert row["offending value"] == "<U+202E>4202.90.40"
    assert "&lt;U+202E&gt;4202.90.40" in failing_sync.html
    for path in failing_sync.reports.values():
        assert RLO not in path.read_text("utf-8-sig")


def test_report_regenerates_a_run_and_opens_it(failing_sync: FailingSync, tmp_path: Path) -> None:
    project, reports = failing_sync.project, failing_sync.reports
    run_id = reports["csv"].name.split("-")[1]
    before = read_csv_report(reports["csv"])
    for path in reports.values():
        path.unlink()
    browser = tmp_path / "browser"
    opened = tmp_path / "opened.txt"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{opened}"\n')
    browser.chmod(0o755)
    as_csv, as_html = project.run_many(
        (("report", "--run", run_id, "--format", "csv"), None),
        (("report", "--open"), {"BROWSER": str(browser)}),  # default: the latest sync run
    )
    assert as_csv.code == 0, as_csv
    assert as_csv.stdout.strip() == str(reports["csv"])
    assert read_csv_report(reports["csv"]) == before
    assert as_html.code == 0, as_html
    assert as_html.stdout.strip() == str(reports["html"])
    assert opened.read_text() == reports["html"].as_uri()
    assert "MAP-1" in reports["html"].read_text("utf-8")


def test_report_of_an_unknown_run_is_a_clear_error(failing_sync: FailingSync) -> None:
    result = failing_sync.project.run("report", "--run", "9999")
    assert result.code == 2, result
    assert result.stderr.startswith("error: report: no run 9999 in staging"), result
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_retries_exhausted_names_attempts_and_last_answer(
    project: Project, sandbox: SandboxServer
) -> None:
    project.write_invoices([invoice_row("FLAKY-1")])
    sandbox.state.configure(fail_rate=1.0)
    result = project.run(
        "sync", "-m", str(FLAT_MAPPING), "--no-status-sync", env={"APPZEN_RETRY_ATTEMPTS": "2"}
    )
    assert result.code == 1, result
    [row] = read_csv_report(result.reports()["csv"])
    assert row["source key"] == "FLAKY-1"
    assert row["stage"] == "retries_exhausted"
    assert row["attempts"] == "2"
    assert row["HTTP status"] == "500"
    assert sandbox.state.response_counts() == {500: 2}
    assert "Retries exhausted" in result.reports()["html"].read_text("utf-8")


def test_nul_byte_in_a_csv_source_stops_the_run_naming_the_line(project: Project) -> None:
    path = project.write_invoices([invoice_row("OK-1"), invoice_row("NUL-1", line_text="a\0b")])
    result = project.run("sync", "-m", str(FLAT_MAPPING))
    assert result.code == 2, result
    assert "samples/flat_ap_export.csv:3" in result.stderr
    assert "NUL" in result.stderr
    assert "Traceback" not in result.stderr
    assert path.read_bytes().count(b"\0") == 1  # the source is never changed


JSON_MAPPING = """\
name: hostile_json
source: { kind: json, path: samples/invoices.json, records: invoices }
invoice_key: id
header:
  invoice_number: id
  invoice_date: date
  entity_id: entity
  supplier_id: supplier
  total_amount: { amount: total, currency: { const: EUR } }
invoice_lines:
  line_number: { const: 1 }
  line_description: text
  quantity: { const: 1 }
  unit_price: { amount: total, currency: { const: EUR } }
  total_amount: { amount: total, currency: { const: EUR } }
"""


def test_nul_bytes_from_a_json_source_are_shown_as_symbols(project: Project) -> None:
    """A CSV export with NUL is refused; JSON can carry ``\\u0000`` into a failure."""
    (project.root / "mappings" / "hostile.yaml").write_text(JSON_MAPPING)
    invoice = {"entity": "DE01", "supplier": "V1", "total": "10.00", "text": "x"}
    invoices = [
        invoice | {"id": "NUL-1", "date": "2024-09-04\u0000=cmd|' /C calc'!A0"},
        invoice | {"id": "=1+1\u0000", "date": f"bad{RLO}"},
    ]
    source = project.root / "samples" / "invoices.json"
    source.write_text(json.dumps({"invoices": invoices}))
    result = project.run("sync", "-m", "mappings/hostile.yaml", "--no-status-sync")
    assert result.code == 1, result
    reports = result.reports()
    rows = rows_by_key(read_csv_report(reports["csv"]))
    assert rows["NUL-1"][0]["offending value"] == "2024-09-04\u2400=cmd|' /C calc'!A0"
    assert rows["'=1+1\u2400"][0]["offending value"] == "bad<U+202E>"
    for path in reports.values():
        data = path.read_bytes()
        assert b"\0" not in data
        assert RLO.encode() not in data
    assert "=1+1\u2400" in reports["html"].read_text("utf-8")
