"""What every flow shares: settings (env or a Prefect Secret block), secret-safe logging, artifacts.

Flows only orchestrate: every step is a call into ``pipeline``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import (
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_table_artifact,
)
from prefect.blocks.system import Secret
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task

from flows.limits import shared_quota
from pipeline.errors import TransientError
from pipeline.jobs.progress import RunProgress, logged_progress
from pipeline.jobs.reports import failed_invoices, report_url
from pipeline.jobs.runlog import log_end
from pipeline.jobs.store import StagingStore
from pipeline.redact import SecretFilter, register_settings
from pipeline.report import report_rows, summary_markdown
from pipeline.report.invoices import InvoiceEntry
from pipeline.settings import Settings, SettingsError, load_settings
from pipeline.summary import RunSummary

_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs", "")
_BLOCK_FIELDS = ("api_key", "customer_id", "customer_key")
TABLE_ROWS = 500
"""Failed rows a table artifact holds at most (the CSV/HTML report has them all)."""


def protect_logs() -> None:
    """Scrub secrets from every record Prefect's handlers (console and API) see."""
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, SecretFilter) for f in handler.filters):
                handler.addFilter(SecretFilter())


async def flow_settings(
    credentials_block: str | None, *, global_limit: str | None = None
) -> Settings:
    """Settings from the environment; with ``credentials_block``, the AppZen credentials come
    from that Prefect Secret block (JSON: ``api_key``, ``customer_id``, ``customer_key``). The
    AppZen quota is shared through the global concurrency limit ``global_limit`` (a flow
    parameter: a name or ``none``), else the one the settings or the server say
    (:func:`flows.limits.shared_quota`)."""
    overrides: dict[str, Any] = {}
    if credentials_block:
        secret: Secret[Any] = await Secret.aload(credentials_block)
        value = secret.get()
        if not isinstance(value, dict) or not set(_BLOCK_FIELDS) <= value.keys():
            raise SettingsError(
                f"Secret block {credentials_block!r} must hold JSON with the keys "
                f"{', '.join(_BLOCK_FIELDS)}: save it with python -m flows.credentials "
                f"{credentials_block}"
            )
        overrides = {f"appzen_{name}": value[name] for name in _BLOCK_FIELDS}
    settings = load_settings(**overrides)
    register_settings(settings)
    protect_logs()
    return await shared_quota(settings, global_limit)


async def only_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a batch task only for a transient cause (the staging database was locked or the
    connection dropped: the error's class says so), never for configuration errors or bad data."""
    error = await state.aresult(raise_on_failure=False)
    return isinstance(error, TransientError)


def log_summary(summary: RunSummary) -> RunSummary:
    """The run-end lines of ``summary`` in the flow-run log (:func:`pipeline.jobs.runlog.end_lines`:
    INFO counts, a WARNING when invoices failed, an ERROR when it stopped); ``summary``."""
    log_end(get_run_logger(), summary)
    return summary


@contextlib.contextmanager
def run_progress(settings: Settings, total: int | None = None) -> Iterator[RunProgress]:
    """A job's ``on_progress`` that logs the run's progress line (extracted, sent, failed, rate,
    ETA when ``total`` is known) in the flow-run log every PROGRESS_INTERVAL seconds, and once
    at the end."""
    with logged_progress(get_run_logger(), settings.progress_interval, total) as progress:
        yield progress


def artifact_key(kind: str, mapping: str) -> str:
    """``nightly-sample-erp``: an artifact key (lowercase letters, digits and dashes)."""
    return f"{kind}-{_slug(mapping)}"


async def publish(
    title: str,
    key: str | None,
    summaries: Sequence[RunSummary],
    store: StagingStore,
    notes: Sequence[str] = (),
    *,
    reports_url: str | None = None,
) -> None:
    """Prefect artifacts of ``summaries``: a markdown summary (counts, the failed invoices of each
    run, where its report is and the command that writes it again), a table of the failed rows
    (the first :data:`TABLE_ROWS`), and with ``reports_url`` (APPZEN_REPORTS_URL) a link to the
    HTML report of each run with failures. Keyed ``KEY-summary``, ``KEY-failed-rows``,
    ``KEY-report``, or unkeyed (on the run's page only) when ``key`` is None."""
    runs = [s.run_id for s in summaries if s.run_id is not None and not s.dry_run]
    for summary in summaries:
        url = report_url(reports_url, summary.run_id) if summary.run_id is not None else None
        if url is not None and not summary.dry_run:
            summary.reports["url"] = url  # a spread partition's summary, read from staging
    failures = [f for run_id in runs for f in store.failures_for_run(run_id)]
    if len(failures) > TABLE_ROWS:
        notes = [
            *notes,
            f"The failed-rows table shows the first {TABLE_ROWS} of {len(failures)} rows; "
            "the CSV report has them all.",
        ]
    await acreate_markdown_artifact(
        key=f"{key}-summary" if key else None,
        markdown=summary_markdown(title, summaries, notes, _invoices(store, summaries)),
        description=f"{title}: counts by outcome and the failed invoices",
    )
    if failures:
        await acreate_table_artifact(
            key=f"{key}-failed-rows" if key else None,
            table=report_rows(failures[:TABLE_ROWS]),
            description=f"{title}: failed rows (stage, rule, field, value, fix)",
        )
    for summary in summaries:
        if "url" in summary.reports and summary.failed:
            await acreate_link_artifact(
                key=f"{key}-report" if key else None,
                link=summary.reports["url"],
                link_text=f"{summary.flow} run {summary.run_id}: failed-row report",
                description=f"{title}: the HTML failed-row report of run {summary.run_id}",
            )


def _invoices(
    store: StagingStore, summaries: Sequence[RunSummary]
) -> dict[int, list[InvoiceEntry]]:
    """The failed invoices of each run that had any, by run id (read from staging)."""
    found: dict[int, list[InvoiceEntry]] = {}
    for summary in summaries:
        record = store.get_run(summary.run_id) if summary.run_id and summary.failed else None
        if record is not None:
            found[record.id] = failed_invoices(store, record)
    return found


def _slug(text: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())) or "run"
