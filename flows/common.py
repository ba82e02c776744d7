"""What every flow shares: settings (env or a Prefect Secret block), secret-safe logging, artifacts.

Flows only orchestrate: every step is a call into ``pipeline``.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact
from prefect.blocks.system import Secret
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import Task

from pipeline.errors import CONFIG_ERRORS
from pipeline.load.summary import RunSummary
from pipeline.redact import SecretFilter, register_settings, scrub
from pipeline.report import ReportPaths, report_rows
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from pipeline.staging.errors import StagingError

_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs", "")


def protect_logs() -> None:
    """Scrub secrets from every record Prefect's handlers (console and API) see."""
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, SecretFilter) for f in handler.filters):
                handler.addFilter(SecretFilter())


async def flow_settings(credentials_block: str | None) -> Settings:
    """Settings from the environment; with ``credentials_block``, the AppZen credentials come
    from that Prefect Secret block (JSON: ``api_key``, ``customer_id``, ``customer_key``)."""
    overrides: dict[str, Any] = {}
    if credentials_block:
        secret: Secret[Any] = await Secret.aload(credentials_block)
        value = secret.get()
        if not isinstance(value, dict) or not {"api_key", "customer_key"} <= value.keys():
            raise ValueError(
                f"Secret block {credentials_block!r} must hold JSON with api_key, customer_id "
                "and customer_key"
            )
        overrides = {
            "appzen_api_key": value["api_key"],
            "appzen_customer_id": value.get("customer_id"),
            "appzen_customer_key": value["customer_key"],
        }
    settings = load_settings(**overrides)
    register_settings(settings)
    protect_logs()
    return settings


def open_store(settings: Settings) -> StagingStore:
    """The staging store named by the settings."""
    return StagingStore.open(settings.staging_database_url.get_secret_value())


def only_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a batch task only for a transient cause (the staging database hiccupped), never for
    configuration errors or bad data."""
    try:
        state.result()
    except StagingError as error:
        return "locked" in str(error) or "unreachable" in str(error) or "connection" in str(error)
    except CONFIG_ERRORS:
        return False
    except Exception:  # noqa: BLE001 - anything unknown: do not retry blindly
        return False
    return False


def log_summary(summary: RunSummary) -> None:
    """One line per run in the flow's log (counts only, never a secret)."""
    logger = get_run_logger()
    counts = ", ".join(f"{k}={v}" for k, v in sorted(summary.counts.items()) if v)
    logger.info(scrub(f"{summary.flow} run {summary.run_id}: {summary.status}; {counts}"))
    if summary.fatal:
        logger.error(scrub(f"stopped: {summary.fatal}"))


async def publish(
    key: str, summaries: list[RunSummary], reports: ReportPaths | None, store: StagingStore
) -> None:
    """A markdown summary (counts by outcome, rate, duration, report links) and a table of the
    failed rows, as Prefect artifacts."""
    lines = [f"# {key}", ""]
    for summary in summaries:
        lines += [
            f"## {summary.flow} · run {summary.run_id} · {summary.mapping} · **{summary.status}**",
            "",
            "| outcome | count |",
            "|---|---:|",
            *(f"| {k} | {v} |" for k, v in sorted(summary.counts.items()) if v),
            f"| rate (requests/s) | {summary.rate:.1f} |",
            f"| duration (s) | {summary.duration_s:.1f} |",
            "",
        ]
        if summary.fatal:
            lines += [f"**Stopped:** {summary.fatal}", ""]
    if reports is not None:
        lines += [f"Failed-row report: `{reports.html}` (HTML), `{reports.csv}` (CSV)"]
    await acreate_markdown_artifact(key=f"{key}-summary", markdown=scrub("\n".join(lines)))
    failures = [f for s in summaries if s.run_id for f in store.failures_for_run(s.run_id)]
    if failures:
        await acreate_table_artifact(key=f"{key}-failed-rows", table=report_rows(failures))
