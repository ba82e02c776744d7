"""What the CLI does around a run: operator errors and exit codes, settings and staging, runs with
live progress and their failed-row reports, the closing summary (tables or JSON).

Heavy modules (pandas, SQLAlchemy, httpx) are imported inside the functions that need them, so
``appzen-etl --help`` does not pay for them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from pipeline.cli import render
from pipeline.cli.render import console
from pipeline.errors import ConfigurationError, EtlError, ItemError
from pipeline.redact import register_settings
from pipeline.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipeline.jobs.backfill import BackfillPartition, BackfillPlan
    from pipeline.jobs.retry import RetryScope
    from pipeline.load.sync import SyncOptions
    from pipeline.staging import StagingStore
    from pipeline.staging.records import RunRecord
    from pipeline.summary import RunSummary

EXIT_OK, EXIT_ROWS_FAILED, EXIT_CONFIG, EXIT_OUTAGE, EXIT_PARTIAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
"""128 + SIGTERM: the run was asked to stop and stopped cleanly (recorded ``cancelled``)."""
EXIT_BUDGET = 5
"""The day's AppZen budget is spent: the run stopped cleanly and resumes after the day boundary."""
CONTENT_FLOWS = ("sync", "backfill", "retry_failed")
"""Flows that extract and send invoices (status_sync only pushes statuses)."""

P = ParamSpec("P")
R = TypeVar("R")
Runs = list[tuple[str, "RunSummary"]]
"""The runs a command made, each with the name its summary table and JSON give it."""
Progress = Callable[["RunSummary"], None]


class OptionError(ConfigurationError):
    """Options that do not fit together or name nothing (exit code 2)."""


def operator_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors that stop a command (:func:`is_operator_error`: configuration, credentials,
    sources, an unreachable database) into one clear message and exit code 2 (no traceback);
    Ctrl-C into exit code 130."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt:
            render.error("interrupted; run the command again to resume", prefix="stopped")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as error:
            if not is_operator_error(error):
                raise
            render.error(str(error))
            raise typer.Exit(EXIT_CONFIG) from None

    return wrapper


def is_operator_error(error: Exception) -> bool:
    """True for the errors that stop a command with their one-line message and exit code 2: every
    error of the one tree (:mod:`pipeline.errors`) but the item-level ones, which never stop a
    run. A terminal one asks a person to fix something; a transient one outlasted its retries
    (the staging or ERP database is down: start it, then run the command again)."""
    return isinstance(error, EtlError) and not isinstance(error, ItemError)


def load_operator_settings() -> Settings:
    """The settings, their secrets registered so no message can show them."""
    settings = load_settings()
    register_settings(settings)
    return settings


def share_quota(settings: Settings) -> Settings:
    """``settings`` for a command that calls AppZen: with ``APPZEN_GLOBAL_LIMIT`` naming a
    limit, sharing the quota with every flow and worker through that Prefect global concurrency
    limit, as the flows do (:func:`pipeline.runtime.shared.share_outside_flows`); a missing or
    unreachable one is a configuration error (exit code 2). Unset or ``none``: the run paces
    alone, as before (Prefect is not even imported)."""
    from pipeline.runtime.shared import share_outside_flows, shared_name  # noqa: PLC0415

    if shared_name(settings.appzen_global_limit) is None:
        return settings
    return share_outside_flows(settings)


def open_store(settings: Settings) -> StagingStore:
    """The staging store (migrated); an unreachable database is a StagingError (exit 2)."""
    from pipeline.jobs.store import open_store as open_job_store  # noqa: PLC0415 - SQLAlchemy

    return open_job_store(settings)


# --- running -------------------------------------------------------------------------------
def content_run(
    run: Callable[[Progress], Coroutine[Any, Any, RunSummary]],
    settings: Settings,
    total: int | None = None,
) -> RunSummary:
    """One job (``run(on_progress)``, a coroutine of the job API that attaches its reports) to
    the end with its progress (live on a terminal, else logged every PROGRESS_INTERVAL seconds);
    ``total`` (invoices in scope, when known) gives it an ETA. Off a terminal the run's end
    lines are logged too. SIGTERM stops it cleanly (:mod:`pipeline.runtime.stop`)."""
    from pipeline.runtime.stop import sigterm_stops_runs  # noqa: PLC0415

    with render.progress_display(total=total, interval=settings.progress_interval) as show:
        summary = asyncio.run(sigterm_stops_runs(run(show)))
    render.log_run_end(summary)
    return summary


def sync_run(options: SyncOptions, settings: Settings, store: StagingStore) -> RunSummary:
    """A sync run of ``options`` with progress; its reports attached."""
    from pipeline.jobs import sync as sync_job  # noqa: PLC0415

    return content_run(
        lambda show: sync_job.run(settings, store, options, on_progress=show), settings
    )


def status_run(mapping: Path, settings: Settings, store: StagingStore, dry_run: bool) -> RunSummary:
    """A status-sync run with its progress (pushed, failed, rate); its reports attached."""
    from pipeline.jobs import status as status_job  # noqa: PLC0415

    options = status_job.StatusOptions(mapping, dry_run=dry_run)
    return content_run(
        lambda show: status_job.run(settings, store, options, on_progress=show), settings
    )


def backfill_runs(plan: BackfillPlan, settings: Settings, store: StagingStore) -> Runs:
    """The plan's partitions in turn, each a run with progress, under the backfill's own run
    record; stops after a partition stopped by a fatal answer."""
    from pipeline.jobs import backfill as backfill_job  # noqa: PLC0415

    runs: Runs = []
    with backfill_job.parent_run(store, plan) as parent:
        for part in plan.partitions_of(parent.id):
            summary = partition_run(part, settings, store)
            parent.add(summary)
            runs.append((backfill_name(part.since, part.until), summary))
            if summary.fatal:
                break
    return runs


def backfill_plan(
    plan: BackfillPlan, settings: Settings, store: StagingStore, as_json: bool
) -> None:
    """``backfill --plan``: read the range as a dry run and print what it needs (exit code 0)."""
    from pipeline.jobs import backfill as backfill_job  # noqa: PLC0415

    with render.activity("backfill --plan: reading the range (nothing is sent)…"):
        found = asyncio.run(backfill_job.forecast(settings, store, plan))
    if as_json:
        render.print_json({"command": "backfill --plan", "exit_code": 0, **found.as_dict()})
        return
    for line in render.backfill_plan_lines(found, settings.appzen_budget_timezone):
        console.out(line, highlight=False)


def partition_run(part: BackfillPartition, settings: Settings, store: StagingStore) -> RunSummary:
    """One backfill partition with progress; its reports attached."""
    from pipeline.jobs import backfill as backfill_job  # noqa: PLC0415

    return content_run(
        lambda show: backfill_job.run_partition(settings, store, part, on_progress=show), settings
    )


def retry_run(retry: RetryScope, settings: Settings, store: StagingStore) -> RunSummary:
    """A retry-failed run of ``retry`` with progress (an ETA: its size is known)."""
    from pipeline.jobs import retry as retry_job  # noqa: PLC0415

    return content_run(
        lambda show: retry_job.run(settings, store, retry, on_progress=show),
        settings,
        total=len(retry.keys),
    )


def latest_run(
    store: StagingStore, mapping: str | None = None, flows: tuple[str, ...] = CONTENT_FLOWS
) -> RunRecord | None:
    """The newest run of ``flows`` (of ``mapping`` when given) among the last 500."""
    for record in store.list_runs(500):
        if record.flow in flows and mapping in (None, record.mapping):
            return record
    return None


def require_run(store: StagingStore, run: int | None, command: str) -> RunRecord | None:
    """The run ``--run`` names (None without ``--run``); an unknown id is an OptionError."""
    if run is None:
        return None
    record = store.get_run(run)
    if record is None:
        raise OptionError(f"{command}: no run {run} in staging; `appzen-etl runs` lists the runs")
    return record


def check_backfill_range(mapping: Path, start: date | None, end: date | None) -> None:
    """Refuse a reversed range, and a range on a file source (which has no date filter)."""
    from pipeline.mapping.loader import load_mapping  # noqa: PLC0415

    if start is not None and end is not None and end < start:
        raise OptionError(f"backfill: --to {end} is before --from {start}; swap them")
    kind = load_mapping(mapping).source.kind
    if (start or end) and kind != "sql":
        raise OptionError(
            f"backfill: {mapping} reads a {kind} file, which has no date filter, so --from/--to "
            "would send every row; leave them out to backfill the whole file"
        )


def backfill_name(since: str | None, until: str | None) -> str:
    """``backfill 2024-01-01..2024-06-30`` from a partition's exclusive/inclusive edges."""
    return f"backfill {_edge_day(since, timedelta(microseconds=1))}..{_edge_day(until)}"


def _edge_day(edge: str | None, shift: timedelta = timedelta()) -> str:
    if edge is None:
        return "…"
    return (datetime.strptime(edge, "%Y-%m-%d %H:%M:%S.%f") + shift).date().isoformat()


# --- closing -------------------------------------------------------------------------------
def exit_code(runs: Runs) -> int:
    """143 when a run was stopped by SIGTERM (``cancelled``), 2 when a run stopped on a fatal
    answer or its source failed, 3 when AppZen was unreachable (an outage: the circuit breaker
    stopped the run), 5 when the day's AppZen budget is spent, 4 when a run skipped invoices
    another live run held (``partial``), 1 when rows failed, else 0."""
    if any(summary.cancelled for _, summary in runs):
        return EXIT_TERMINATED
    if any(s.fatal and not (s.outage or s.budget_spent) for _, s in runs):
        return EXIT_CONFIG
    if any(summary.outage for _, summary in runs):
        return EXIT_OUTAGE
    if any(summary.budget_spent for _, summary in runs):
        return EXIT_BUDGET
    if any(summary.status == "partial" for _, summary in runs):
        return EXIT_PARTIAL
    return EXIT_ROWS_FAILED if any(summary.failed for _, summary in runs) else EXIT_OK


def finish(command: str, runs: Runs, as_json: bool) -> None:
    """Print the summaries (tables and report paths, or one JSON document) and exit with the
    code they call for; a fatal stop is one line on stderr."""
    code = exit_code(runs)
    if as_json:
        render.print_json(
            {
                "command": command,
                "exit_code": code,
                "failed": sum(summary.failed for _, summary in runs),
                "runs": [{"name": name} | summary.as_dict() for name, summary in runs],
            }
        )
    else:
        print_runs(runs)
    fatal = next((summary.fatal for _, summary in runs if summary.fatal), None)
    if fatal:
        render.error(fatal, prefix="stopped")
    for _, summary in runs:
        if summary.status == "partial" and summary.reason:
            render.error(f"run {summary.run_id}: {summary.reason}", prefix="partial")
    if code:
        raise typer.Exit(code)


def print_runs(runs: Runs) -> None:
    """Each run's summary table and report paths; a dry run also lists its failures."""
    for name, summary in runs:
        console.print(render.summary_table(name, summary))
        if summary.dry_run and summary.failures:
            console.print(render.failures_table(summary.failures, limit=20))
        if summary.dry_run and summary.planned:
            console.print(render.planned_table(summary.planned))
        for kind, path in summary.reports.items():
            console.out(f"run {summary.run_id} failed-row report ({kind}): {path}", highlight=False)
    if runs and all(summary.dry_run for _, summary in runs):
        console.out("dry run: nothing was sent to AppZen and nothing recorded in staging")


def nothing_to_retry(mapping: str, run: int | None, as_json: bool) -> None:
    """Say that retry-failed found nothing to resend (exit code 0)."""
    if as_json:
        render.print_json({"command": "retry-failed", "exit_code": 0, "failed": 0, "runs": []})
    else:
        scope = f"run {run} and staging hold" if run is not None else "the ledger holds"
        console.out(f"nothing to retry: {scope} no open failure of mapping {mapping}")
