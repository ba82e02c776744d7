"""Retry-failed resends exactly the invoices AppZen refused; every run leaves a markdown summary and
a failed-rows table as Prefect artifacts."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from prefect.artifacts import Artifact

from flows.nightly import nightly_sync
from flows.retry import retry_failed
from pipeline.devkit.sample_erp import GenerationReport
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from tests.flows.helpers import MAPPING, artifact_data, counts_of, flow_run_id, logs_of

pytestmark = pytest.mark.prefect


def _busiest_supplier(erp_url: str, dirty: set[str]) -> tuple[str, set[str]]:
    """The supplier with the most clean invoices, and those invoices."""
    engine = sa.create_engine(erp_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT document_no, supplier_id FROM erp_invoice"))
            by_supplier = [(str(s), d) for d, s in rows if s is not None and d not in dirty]
    finally:
        engine.dispose()
    supplier = Counter(s for s, _ in by_supplier).most_common(1)[0][0]
    return supplier, {d for s, d in by_supplier if s == supplier}


@pytest.fixture
def refused(sandbox: SandboxServer, erp: tuple[str, GenerationReport]) -> set[str]:
    """Invoices AppZen refuses (a supplier it does not know: a business 400)."""
    url, report = erp
    supplier, invoices = _busiest_supplier(url, set(report.dirty_ids))
    sandbox.state.configure(unknown_suppliers=frozenset({supplier}))
    return invoices


async def test_artifacts_hold_the_counts_and_every_failed_row(
    flow_env: Settings,
    sandbox: SandboxServer,
    erp_report: GenerationReport,
    refused: set[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The summary lists the failed invoices themselves, says how to write the report again
    anywhere and, with APPZEN_REPORTS_URL, links to it (a link artifact too), never naming the
    worker's path."""
    monkeypatch.setenv("APPZEN_REPORTS_URL", "https://reports.example/appzen/")
    result = await nightly_sync(mapping=MAPPING)

    sync = result["sync"]
    assert isinstance(sync, dict)
    created = sync["counts"]["created"]
    markdown = await artifact_data("nightly-sample-erp-summary")
    text = markdown.replace("\\", "")  # Markdown escapes of the punctuation
    assert "# Nightly sync of sample_erp" in text
    assert "## sync · run " in text
    assert "## status_sync · run " in text
    assert f"| created | {created} |" in text
    assert f"| failed_appzen | {len(refused)} |" in text
    assert f"| failed_mapping | {len(erp_report.dirty)} |" in text
    run_id = sync["run_id"]
    url = f"https://reports.example/appzen/run-{run_id}-failures.html"
    assert sync["reports"]["url"] == url
    assert f"Failed-row report: [run-{run_id}-failures.html](<{url}>)" in text
    assert sync["reports"]["html"] not in text
    assert f"`appzen-etl report --run {run_id}`" in text
    failed = len(refused) + len(erp_report.dirty)
    assert f"### {failed} failed invoices" in text
    for key in refused | set(erp_report.dirty_ids):
        assert f"| {key} |" in text
    link = await Artifact.aget("nightly-sample-erp-report")
    assert link is not None
    assert f"]({url})" in str(link.data)  # Prefect keeps a link artifact as its markdown

    rows = await artifact_data("nightly-sample-erp-failed-rows")
    assert {row["source key"] for row in rows} == refused | set(erp_report.dirty_ids)
    appzen = [row for row in rows if row["stage"] == "appzen"]
    assert {row["source key"] for row in appzen} == refused
    assert all(row["HTTP status"] == "400" and row["x-correlation-id"] for row in appzen)
    mapping = {row["source key"]: row for row in rows if row["stage"] == "mapping"}
    for item in erp_report.dirty:
        assert mapping[item.document_no]["source column"] == item.column


async def test_the_flow_run_log_ends_with_counts_and_a_warning_naming_the_failures(
    flow_env: Settings, sandbox: SandboxServer, erp_report: GenerationReport, refused: set[str]
) -> None:
    """The run-end lines (pipeline.jobs.runlog): INFO with the counts, never an empty tail; a
    WARNING with the failed invoices, the amount at risk, the report and how to rewrite it."""
    state = await nightly_sync(mapping=MAPPING, return_state=True)
    sync: Any = (await state.aresult())["sync"]

    logs = await logs_of(flow_run_id(state))
    done = [log.message for log in logs if log.message.startswith(f"sync run {sync['run_id']} ")]
    failed = len(refused) + len(erp_report.dirty)
    assert any(f"succeeded with {failed} failed invoices" in line for line in done)
    warnings = [log.message for log in logs if log.level == logging.WARNING]
    assert any(
        f"{failed} invoices failed; amount at risk " in line
        and sync["reports"]["html"] in line
        and f"appzen-etl report --run {sync['run_id']}" in line
        for line in warnings
    ), warnings
    assert not [log for log in logs if log.message.rstrip().endswith(";")]


async def test_retry_failed_resends_only_what_appzen_refused(
    flow_env: Settings, sandbox: SandboxServer, erp_report: GenerationReport, refused: set[str]
) -> None:
    """The retry re-reads every open failure: the refused invoices go through, the dirty ones
    (not fixed) fail again and stay open, so a second retry reads them once more."""
    await nightly_sync(mapping=MAPPING, status_sync=False)
    sent_before = set(sandbox.state.invoices())
    assert not sent_before & refused
    sandbox.state.configure(unknown_suppliers=frozenset())  # AppZen now knows the supplier

    result = await retry_failed(mapping=MAPPING)

    invoices = sandbox.state.invoices()
    assert set(invoices) == sent_before | refused
    assert {record.versions for record in invoices.values()} == {1}
    counts = counts_of(result)
    assert (counts["created"], counts["requests"]) == (len(refused), len(refused))
    summary = (await artifact_data("retry-failed-sample-erp-summary")).replace("\\", "")
    assert f"| created | {len(refused)} |" in summary
    rows = await artifact_data("retry-failed-sample-erp-failed-rows")
    assert {row["source key"] for row in rows} == set(erp_report.dirty_ids)  # still dirty

    again = await retry_failed(mapping=MAPPING)
    assert counts_of(again).get("requests", 0) == 0
    assert set(sandbox.state.invoices()) == sent_before | refused
