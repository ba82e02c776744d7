"""The Markdown summary of the Prefect artifacts: counts by outcome per run, a total for the runs
of one flow, rate, duration, fatal stop and report files; data can neither format nor leak."""

from __future__ import annotations

import secrets
from collections import Counter

from pipeline import redact
from pipeline.failures import InvoiceFacts, RowFailure
from pipeline.report import summary_markdown
from pipeline.report.invoices import InvoiceEntry, collapse
from pipeline.report.summary import INVOICE_ROWS, invoice_table
from pipeline.summary import RunSummary


def _summary(run_id: int, flow: str = "backfill", **counts: int) -> RunSummary:
    return RunSummary(
        run_id, "sample_erp", flow, flow == "backfill", False, "succeeded", Counter(counts)
    )


def test_one_run_counts_rate_duration_and_reports() -> None:
    run = _summary(7, "sync", created=3, unchanged=0, requests=4, failed_appzen=1)
    run.duration_s, run.posting_s = 2.25, 2.0
    run.reports = {"csv": "/r/run-7-failures.csv", "html": "/r/run-7-failures.html"}

    text = summary_markdown("Nightly sync of sample_erp", [run]).replace("\\", "")

    assert text.startswith(
        "# Nightly sync of sample_erp\n\n## sync · run 7 · sample_erp · succeeded\n"
    )
    assert "| created | 3 |\n| failed_appzen | 1 |\n| requests | 4 |" in text  # sorted, no zeros
    assert "| unchanged |" not in text
    assert "| rate (requests/s) | 2.0 |" in text
    assert "| duration (s) | 2.2 |" in text
    assert "Failed-row report: /r/run-7-failures.html (HTML), /r/run-7-failures.csv (CSV)" in text
    assert "Total of" not in text
    assert "Stopped" not in text


def test_runs_of_one_flow_get_a_total_and_notes_come_last() -> None:
    runs = [_summary(2, created=3, unchanged=1), _summary(3, created=2, failed_mapping=1)]

    text = summary_markdown("Backfill", runs, ["## Partitions", "", "| a |"]).replace("\\", "")

    total = text.index("## Total of 2 runs")
    assert total < text.index("## backfill · run 2") < text.index("## backfill · run 3")
    assert "| created | 5 |\n| failed_mapping | 1 |\n| unchanged | 1 |" in text[total:]
    assert text.count("· historical") == 2
    assert text.endswith("## Partitions\n\n| a |\n")


def test_runs_of_different_flows_have_no_total() -> None:
    text = summary_markdown("Nightly", [_summary(1, "sync"), _summary(2, "status_sync")])
    assert "Total of" not in text


def test_a_fatal_stop_is_said() -> None:
    run = _summary(4, "sync")
    run.fatal = "HTTP 401: check APPZEN_API_KEY"
    text = summary_markdown("Nightly", [run]).replace("\\", "")
    assert "**Stopped:** HTTP 401: check APPZEN_API_KEY" in text


def test_markdown_in_the_data_cannot_format_or_split_a_table() -> None:
    run = RunSummary(5, "m|_*", "sync", False, False, "failed", Counter({"x|y *b* [l](h)": 1}))
    run.fatal = "<b>[link](http://evil)</b>"
    text = summary_markdown("t|*", [run])
    assert text.startswith("# t\\|\\*\n")
    assert "· m\\|\\_\\* ·" in text
    assert "| x\\|y \\*b\\* \\[l\\]\\(h\\) | 1 |" in text
    assert "**Stopped:** \\<b\\>\\[link\\]\\(http\\:\\/\\/evil\\)\\<\\/b\\>" in text


def test_a_registered_secret_never_appears() -> None:
    secret = f"tok-{secrets.token_hex(10)}"
    redact.register(secret)
    run = _summary(6, "sync")
    run.fatal = f"refused {secret}"
    run.reports = {"csv": f"/tmp/{secret}.csv", "html": f"/tmp/{secret}.html"}
    text = summary_markdown(f"title {secret}", [run], [f"note {secret}"])
    assert secret not in text.replace("\\", "")


def _entry(key: str, **facts: str) -> InvoiceEntry:
    problem = collapse(
        [
            RowFailure(
                key, "x.csv:2", "mapping", "currency", "unknown currency 'EUX'", "currency", "ccy"
            )
        ]
    )
    return InvoiceEntry(key, InvoiceFacts(**facts), "open", 1, "2025-03-01", problem)


def test_the_failed_invoices_are_listed_with_number_supplier_total_and_reason() -> None:
    run = _summary(7, "sync", created=3, failed_mapping=2)
    entries = [
        _entry(
            "INV-1",
            invoice_number="A-100",
            supplier_id="V1",
            supplier_name="Acme",
            total_amount="119.00",
            currency="EUR",
        ),
        _entry("INV-2"),
    ]

    text = summary_markdown("Nightly", [run], invoices={7: entries}).replace("\\", "")

    assert "### 2 failed invoices" in text
    assert "| invoice | number | supplier | total | reason |" in text
    assert "| INV-1 | A-100 | V1 Acme | 119.00 EUR | An unknown currency (currency): " in text
    assert "| INV-2 |  |  |  | An unknown currency" in text
    assert "and " not in text.split("### 2 failed invoices")[1]
    assert "`appzen-etl report --run 7`" in text


def test_the_table_stops_at_fifty_rows_and_says_how_many_more() -> None:
    entries = [_entry(f"INV-{n:03}") for n in range(73)]
    lines = invoice_table(entries)
    assert sum(line.startswith("| INV\\-") for line in lines) == INVOICE_ROWS == 50
    assert "and 23 more (the report lists them all)" in lines


def test_data_in_the_table_cannot_format_link_or_leak() -> None:
    secret = "sk-" + secrets.token_hex(8)
    redact.register(secret)
    hostile = _entry("K|1", supplier_name=f"[click](http://evil) **{secret}** | x")

    text = "\n".join(invoice_table([hostile]))

    assert secret not in text
    assert "[click](http" not in text  # escaped: \[click\]\(http…
    row = next(line for line in text.splitlines() if line.startswith("| K"))
    assert row.count(" | ") == 4  # the | of the data is escaped, the row keeps its 5 cells


def test_a_reports_url_is_a_link_instead_of_the_worker_path() -> None:
    run = _summary(9, "sync", failed_appzen=1)
    run.reports = {
        "csv": "/worker/.state/reports/run-9-failures.csv",
        "html": "/worker/.state/reports/run-9-failures.html",
        "url": "https://reports.example/appzen/run-9-failures.html",
    }
    text = summary_markdown("Nightly", [run])
    assert "Failed-row report: [run\\-9\\-failures\\.html](<https://reports.example/appzen/" in text
    assert "/worker/" not in text
