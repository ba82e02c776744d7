"""The lines that close a run in a log: INFO counts (never an empty tail), a WARNING when invoices
failed (how many, the amount at risk, the report and the command that rewrites it anywhere), an
ERROR with the reason when it stopped; secrets never."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from pipeline import redact
from pipeline.jobs.runlog import at_risk_text, end_lines
from pipeline.summary import RunSummary


def _summary(status: str = "succeeded", **counts: int) -> RunSummary:
    summary = RunSummary(7, "sample_erp", "sync", False, False, status, Counter(counts))
    summary.duration_s = 12.34
    return summary


def test_a_clean_run_is_one_info_line_with_its_counts() -> None:
    run = _summary(extracted=200, created=150, updated=3, unchanged=47, requests=153)
    run.posting_s = 10.0

    assert end_lines(run) == [
        (
            logging.INFO,
            "sync run 7 (sample_erp): succeeded in 12.3 s; extracted 200, unchanged 47, "
            "created 150, updated 3; 15.3 requests/s",
        )
    ]


def test_a_run_that_read_nothing_says_so_instead_of_an_empty_tail() -> None:
    (level, line), *more = end_lines(_summary())
    assert (level, more) == (logging.INFO, [])
    assert line == "sync run 7 (sample_erp): succeeded in 12.3 s; nothing read, nothing sent"
    assert not line.rstrip().endswith(";")


def test_failed_invoices_add_a_warning_with_the_amount_at_risk_and_the_report() -> None:
    run = _summary(extracted=20, created=7, failed_mapping=10, failed_appzen=3)
    run.at_risk, run.at_risk_unknown = {"EUR": "1234.5", "USD": "20"}, 2
    run.reports = {"html": "/r/run-7-failures.html", "csv": "/r/run-7-failures.csv"}

    info, warning = end_lines(run)

    assert info[1].startswith("sync run 7 (sample_erp): succeeded with 13 failed invoices in")
    assert warning == (
        logging.WARNING,
        "sync run 7 (sample_erp): 13 invoices failed; amount at risk EUR 1,234.50, USD 20.00 "
        "(and 2 invoices without a readable total); failed-row report: /r/run-7-failures.html "
        "(again anywhere: appzen-etl report --run 7)",
    )


def test_the_report_location_can_be_a_url() -> None:
    run = _summary(failed_appzen=1)
    run.reports = {"html": "/worker/disk/run-7-failures.html"}
    _, (_, line) = end_lines(run, report="https://reports.example/run-7-failures.html")
    assert "failed-row report: https://reports.example/run-7-failures.html" in line
    assert "/worker/disk" not in line
    assert "1 invoice failed;" in line


@pytest.mark.parametrize(
    "fatal",
    [
        "AppZen unreachable at appzen.example: 30 s of connection refused",
        "AppZen daily budget spent for sync: 300,000 of 300,000 requests used",
        "the source failed: ERP database at erp-db:5432 refused the connection",
    ],
)
def test_a_stopped_run_adds_an_error_with_the_reason(fatal: str) -> None:
    run = _summary("failed", extracted=5, created=5)
    run.fatal = fatal
    lines = end_lines(run)
    assert [level for level, _ in lines] == [logging.INFO, logging.ERROR]
    assert lines[0][1].startswith("sync run 7 (sample_erp): failed in 12.3 s; extracted 5")
    assert lines[1][1] == f"sync run 7 (sample_erp) stopped: {fatal}"


def test_a_reason_other_than_the_stop_is_said_on_the_info_line() -> None:
    run = _summary("partial", busy=3)
    run.reason = "3 invoices skipped: held by run 6 on db1, still running"
    assert end_lines(run)[0][1].endswith(f"; busy 3; {run.reason}")


def test_no_secret_reaches_a_line() -> None:
    secret = "k3y-" + "x" * 20
    redact.register(secret)
    run = _summary("failed", failed_appzen=1)
    run.fatal = f"HTTP 401: x-api-key {secret} refused"
    run.reports = {"html": f"/r/{secret}/run-7.html"}
    assert all(secret not in line for _, line in end_lines(run))


def test_at_risk_text_is_empty_when_nothing_is_known() -> None:
    assert at_risk_text({}, 4) == ""
    assert at_risk_text({"JPY": "1000"}) == "JPY 1,000.00"
