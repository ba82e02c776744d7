"""An operator's day, command after command on one project: plan with a dry run, sync, read the
summary as JSON, fix the rows that failed in the CSV, retry only those, push statuses, backfill,
look at the history, preview and check the mapping."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import (
    FLAT_MAPPING,
    Project,
    Result,
    invoice_row,
    summary_tables,
    total_requests,
)

MAPPING = str(FLAT_MAPPING)
HOSTILE_DATE = "[/bold][link=http://evil.example]\x1b[2J31.02.2024"
"""Rich markup and a terminal escape (clear screen): shown as text, never obeyed."""
CLEAN = [invoice_row("OK-1"), invoice_row("OK-2")]
BROKEN = [
    *CLEAN,
    invoice_row("MAP-1", invoice_date=HOSTILE_DATE),
    invoice_row("REJ-1", supplier_no="V-UNKNOWN"),
]
FIXED = [*CLEAN, invoice_row("MAP-1"), invoice_row("REJ-1")]


@dataclass
class Day:
    """Each step's result and the sandbox's request count and invoices right after it."""

    results: dict[str, Result] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    versions: dict[str, dict[str, int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def day(sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Day:
    state = sandbox_server.state
    state.reset()
    state.configure(unknown_suppliers=["V-UNKNOWN"])
    project = Project.create(tmp_path_factory.mktemp("day"), sandbox_server.base_url)
    project.write_invoices(BROKEN)
    steps: list[tuple[str, tuple[str, ...]]] = [
        ("dry run", ("sync", "-m", MAPPING, "--dry-run")),
        ("sync", ("sync", "-m", MAPPING, "--json")),
        ("fix the CSV", ()),
        ("retry", ("retry-failed", "-m", MAPPING)),
        ("retry again", ("retry-failed", "-m", MAPPING, "--json")),
        ("status-sync", ("status-sync", "-m", MAPPING, "--json")),
        ("backfill", ("backfill", "-m", MAPPING)),
        ("runs", ("runs", "--json")),
        ("preview", ("preview", "-m", MAPPING, "--limit", "1")),
        ("check", ("mapping", "check", MAPPING, "--json")),
    ]
    record = Day()
    try:
        for name, args in steps:
            if args:
                record.results[name] = project.run(*args)
            else:
                project.write_invoices(FIXED)
            record.requests[name] = total_requests(state.response_counts())
            record.versions[name] = {k: v.versions for k, v in state.invoices().items()}
    finally:
        state.reset()
    return record


def test_dry_run_prints_the_plan_and_sends_nothing(day: Day) -> None:
    result = day.results["dry run"]
    assert result.code == 1, result  # MAP-1 would fail mapping
    title = "sync (dry run) · flat_csv · succeeded with 1 failed invoice"  # amber, not green
    plan = summary_tables(result.stdout)[title]
    assert plan["to create"] == "3"
    assert plan["failed: mapping"] == "1"
    assert "MAP-1" in result.stdout  # the failures it would have, data shown as text:
    assert "[/bold][link=http://evil.example]\u241b[2J31.02.2024" in result.stdout
    assert "\x1b" not in result.stdout
    assert "dry run: nothing was sent to AppZen and nothing recorded in staging" in result.stdout
    assert day.requests["dry run"] == 0
    assert "failed-row report" not in result.stdout


def test_sync_json_is_one_document_with_the_counts(day: Day) -> None:
    result = day.results["sync"]
    assert result.code == 1, result
    assert result.messages == ""  # off a terminal stderr has the run log only (no live display)
    assert "pipeline.run: sync run " in result.stderr
    document = result.json()
    assert document["command"] == "sync"
    assert document["exit_code"] == 1
    assert document["failed"] == 2
    sync, status = document["runs"]
    assert sync["name"] == "sync"
    assert sync["counts"]["extracted"] == 4
    assert sync["counts"]["created"] == 2
    assert sync["counts"]["failed_mapping"] == 1
    assert sync["counts"]["failed_appzen"] == 1
    assert set(sync["reports"]) == {"csv", "html"}
    assert status["name"] == "status_sync"
    assert status["counts"]["pushed"] == 2
    assert day.versions["sync"] == {"OK-1": 1, "OK-2": 1}


def test_retry_failed_sends_only_the_fixed_invoices(day: Day) -> None:
    result = day.results["retry"]
    assert result.code == 0, result
    retry = summary_tables(result.stdout)
    [counts] = [rows for title, rows in retry.items() if title.startswith("retry_failed · run")]
    assert counts["created"] == "2"
    assert counts["failed: mapping"] == "0"
    assert counts["failed: AppZen rejected"] == "0"
    assert day.requests["retry"] - day.requests["fix the CSV"] == 2
    assert day.versions["retry"] == {"OK-1": 1, "OK-2": 1, "MAP-1": 1, "REJ-1": 1}
    assert result.reports()["csv"].is_file()


def test_retry_with_nothing_failed_sends_nothing(day: Day) -> None:
    result = day.results["retry again"]
    assert result.code == 0, result
    assert result.json() == {"command": "retry-failed", "exit_code": 0, "failed": 0, "runs": []}
    assert day.requests["retry again"] == day.requests["retry"]


def test_status_sync_pushes_the_retried_invoices(day: Day) -> None:
    result = day.results["status-sync"]
    assert result.code == 0, result
    [run] = result.json()["runs"]
    assert run["counts"]["pushed"] == 2
    assert day.requests["status-sync"] - day.requests["retry again"] == 2


def test_backfill_of_a_file_resends_nothing_unchanged(day: Day) -> None:
    result = day.results["backfill"]
    assert result.code == 0, result
    [(title, counts)] = summary_tables(result.stdout).items()
    assert title.startswith("backfill …..… · run")
    assert counts["unchanged (skipped)"] == "4"
    assert counts["created"] == "0"
    assert day.requests["backfill"] == day.requests["status-sync"]


def test_runs_lists_the_history_newest_first(day: Day) -> None:
    result = day.results["runs"]
    assert result.code == 0, result
    runs = result.json()["runs"]
    assert [run["flow"] for run in runs] == [
        "backfill",  # its one partition
        "backfill",  # the backfill's own run, the partition's parent
        "status_sync",
        "retry_failed",
        "status_sync",
        "sync",
    ]  # the dry run and the retry with nothing to do are not runs
    assert runs[1]["counts"] == runs[0]["counts"]  # the parent's: its partitions' total
    assert runs[-1]["counts"]["created"] == 2
    assert runs[3]["counts"]["created"] == 2
    assert all(run["status"] == "succeeded" for run in runs)


def test_preview_prints_payloads_and_check_validates(day: Day) -> None:
    preview = day.results["preview"]
    assert preview.code == 0, preview
    [line] = preview.stdout.splitlines()
    assert json.loads(line)["invoice_id"] == "OK-1"
    check = day.results["check"]
    assert check.code == 0, check
    assert check.json() | {"failures": [], "warnings": []} == {
        "file": MAPPING,
        "mapping": "flat_csv",
        "valid": True,
        "invoices": 4,
        "mapped": 4,
        "query_rounds": [],  # a CSV file binds no parameters
        "failures": [],
        "warnings": [],
    }
    assert day.requests["check"] == day.requests["backfill"]
