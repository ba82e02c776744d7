"""How the CLI shows things: the live progress line, summary tables, run history, failures, JSON.

Tables and progress go through rich; JSON goes straight to stdout (one document, ASCII, every text
scrubbed of secrets). Nothing here imports pandas or SQLAlchemy, so ``--help`` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console, ConsoleDimensions
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.jobs.progress import RunProgress, logged_progress
from pipeline.jobs.runlog import LOGGER as RUN_LOGGER
from pipeline.jobs.runlog import log_end
from pipeline.redact import scrub
from pipeline.summary import failed_invoices, shown_status

if TYPE_CHECKING:
    from pipeline.failures import RowFailure
    from pipeline.jobs.backfill import BackfillForecast
    from pipeline.staging.budget import BudgetUsage
    from pipeline.staging.records import RunRecord
    from pipeline.summary import RunSummary

PIPE_WIDTH = 160
"""Columns for tables written to a pipe or file (no terminal to fit; ``COLUMNS`` overrides)."""


class _Console(Console):
    """A console as wide as ``COLUMNS`` says, else :data:`PIPE_WIDTH` off a terminal.

    Decided at each use, not when the module is imported (rich fixes the width it finds in
    ``COLUMNS`` at construction): a command run with ``COLUMNS`` set later (a test's
    environment, a wrapper script) gets the width it asked for."""

    @property
    def size(self) -> ConsoleDimensions:
        dimensions = super().size
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit():
            return ConsoleDimensions(int(columns), dimensions.height)
        if not self.is_terminal:
            return ConsoleDimensions(PIPE_WIDTH, dimensions.height)
        return dimensions

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


def _console(*, stderr: bool) -> Console:
    return _Console(stderr=stderr, highlight=False, soft_wrap=True)


console = _console(stderr=False)
err_console = _console(stderr=True)

SUMMARY_ROWS = (
    ("extracted", "invoices extracted"),
    ("mapped", "mapped"),
    ("unchanged", "unchanged (skipped)"),
    ("rejected_unchanged", "rejected before, unchanged (skipped)"),
    ("busy", "held by another live run (skipped: run is partial)"),
    ("planned_create", "to create"),
    ("planned_update", "to update"),
    ("created", "created"),
    ("updated", "updated"),
    ("resent_after_crash", "resent after a crash (UPDATED)"),
    ("resent_after_lost_answer", "resent after a lost answer (UPDATED)"),
    ("resent_after_other_worker", "already in AppZen, not sent from here (UPDATED)"),
    ("reupdated_after_crash", "updated again after a crash (AppZen may have had it)"),
    ("left_pending", "left pending by the stop (sent next run)"),
    ("recreate_resent", "re-created (AppZen lost them)"),
    ("pushed", "statuses pushed"),
    ("pushed_error", "ERP errors pushed"),
    ("repushed_after_crash", "pushed again after a crash (AppZen may have it twice)"),
    ("repushed_after_lost_answer", "pushed again after a lost answer (may be twice)"),
    ("would_push", "statuses to push"),
    ("status_read", "ERP statuses read"),
    ("status_changed", "ERP statuses changed since staged"),
    ("status_not_staged", "ERP statuses of invoices not synced yet (left to sync)"),
    ("recreate", "unknown to AppZen (re-created next sync)"),
    ("failed_mapping", "failed: mapping"),
    ("failed_validation", "failed: validation"),
    ("failed_check", "failed: pre-flight check"),
    ("check_warnings", "sent with check warnings (see the report)"),
    ("failed_appzen", "failed: AppZen rejected"),
    ("failed_retries", "failed: retries exhausted"),
    ("failed_status_sync", "failed: status-sync"),
    ("requests", "AppZen requests"),
    ("retries", "retries"),
)

ALWAYS_SHOWN = {
    "content": (
        "extracted",
        "mapped",
        "unchanged",
        "created",
        "updated",
        "failed_mapping",
        "failed_validation",
        "failed_appzen",
        "failed_retries",
    ),
    "dry_run": ("extracted", "mapped", "unchanged", "planned_create", "planned_update"),
    "status_sync": ("pushed", "pushed_error", "failed_status_sync"),
    "status_sync_dry_run": ("would_push", "failed_status_sync"),
}
"""Rows a summary table shows even at zero (other rows only when they count something)."""


def _shown_always(summary: RunSummary) -> tuple[str, ...]:
    kind = "status_sync" if summary.flow == "status_sync" else "content"
    if summary.dry_run:
        kind = "status_sync_dry_run" if kind == "status_sync" else "dry_run"
    return ALWAYS_SHOWN[kind]


def summary_table(title: str, summary: RunSummary) -> Table:
    """The end-of-run table: counts by outcome (failures by stage), rate and duration."""
    name = f"{title} · run {summary.run_id}" if summary.run_id else f"{title} (dry run)"
    status = shown_status(summary.status, summary.failed)
    heading = Text(f"{name} · {summary.mapping} · {status}", style="table.title")
    table = Table(title=heading, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    always = _shown_always(summary)
    for key, label in SUMMARY_ROWS:
        if summary.counts.get(key) or key in always:
            style = "red" if key.startswith("failed") and summary.counts.get(key) else None
            table.add_row(label, f"{summary.counts.get(key, 0):,}", style=style)
    table.add_row("rate", f"{summary.rate:.1f} requests/s")
    table.add_row("duration", f"{summary.duration_s:.1f} s")
    if summary.reason:
        table.add_row(summary.status, Text(summary.reason))
    return table


def _main_counts(counts: Mapping[str, int]) -> tuple[str, str, str, str]:
    sent = counts.get("created", 0) + counts.get("updated", 0) + counts.get("pushed", 0)
    sent += counts.get("pushed_error", 0)
    failed = sum(v for k, v in counts.items() if k.startswith("failed_"))
    skipped = counts.get("unchanged", 0) + counts.get("rejected_unchanged", 0)
    return str(counts.get("extracted", 0)), str(sent), str(skipped), str(failed)


def runs_table(runs: Sequence[RunRecord]) -> Table:
    """Run history: id, flow, mapping, status, start and the main counts (fits 80 columns)."""
    table = Table(title="runs (latest first)", box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    for column in ("id", "flow", "mapping", "status", "started UTC"):
        table.add_column(column, no_wrap=column != "mapping")
    for column in ("extracted", "sent", "skipped", "failed"):
        table.add_column(column, justify="right", no_wrap=True)
    for run in runs:
        status = shown_status(run.status, failed_invoices(run.counts))
        style = STATUS_STYLES.get(run.status, "") if status == run.status else "yellow"
        status += " (budget spent)" if run.counts.get("budget_spent") else ""
        cells = (str(run.id), run.flow, run.mapping)
        table.add_row(
            *(Text(cell) for cell in cells),  # data, never markup
            Text(status, style=style),
            run.started_at.strftime("%m-%d %H:%M"),
            *_main_counts(run.counts),
        )
    for run in runs:
        if run.reason and run.status in NOTED_STATUSES:
            table.caption = (table.caption + "\n" if table.caption else "") + _note(run)
    return table


STATUS_STYLES = {"failed": "red", "crashed": "red", "partial": "yellow", "cancelled": "yellow"}
"""Colours of run statuses on a terminal; a run that succeeded with failed invoices is yellow
(amber) too, a plain success has none."""

NOTED_STATUSES = ("crashed", "partial", "failed", "cancelled")
"""Statuses whose reason the run history prints under its table."""


def _note(run: RunRecord) -> str:
    """``run 12 crashed: its process 345 on db1 no longer exists; left 10 claimed``."""
    left = run.counts.get("left_claimed")
    tail = f"; {left} invoices were claimed (now free)" if left else ""
    return f"run {run.id}: {run.reason}{tail}"


def budget_line(usage: BudgetUsage) -> str:
    """Today's use of the AppZen daily budget, in one line under the run history."""
    flows = ", ".join(f"{flow} {n:,}" for flow, n in sorted(usage.by_flow.items()))
    kept = ", ".join(f"{n:,} for {flow}" for flow, n in sorted(usage.reserves.items()))
    starts = datetime.fromisoformat(usage.resumes_at)
    return (
        f"AppZen budget {usage.day} ({usage.zone}): {usage.used:,} of {usage.limit:,} requests "
        f"used{f' ({flows})' if flows else ''}{f'; kept {kept}' if kept else ''}; "
        f"the next day starts {starts:%Y-%m-%d %H:%M} {usage.zone}"
    )


def backfill_plan_lines(plan: BackfillForecast, zone: str) -> list[str]:
    """``backfill --plan``: what the range holds, what it needs, and the days it takes."""
    days = plan.days
    span = f"{plan.start or '…'}..{plan.end or '…'}"
    lines = [
        f"backfill plan · {plan.mapping} · {span} (nothing was sent)",
        f"  invoices in range      {plan.invoices:,}",
        f"  requests needed        {plan.to_send:,} (new or changed; {plan.unchanged:,} "
        f"unchanged since AppZen's ack, {plan.refused:,} refused by the mapping or AppZen)",
        f"  left today             {days.left_today:,} requests",
        f"  budget per day         {days.per_day:,} requests (APPZEN_DAILY_BUDGET less the "
        f"other flows' reservations, at most {days.rate:g}/s for a day)",
    ]
    if days.eta is None:
        lines.append("  days needed            never: other flows' reservations take the budget")
        return lines
    eta = days.eta.astimezone(ZoneInfo(zone))
    lines += [
        f"  days needed            {days.days:,} AppZen day(s) ({zone})",
        f"  ETA                    {eta:%Y-%m-%d %H:%M} {zone} at {days.rate:g} requests/s "
        "(each day's run started when the day begins)",
    ]
    return lines


def run_json(run: RunRecord) -> dict[str, object]:
    """One run of the history as JSON-ready data."""
    duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
    return {
        "run_id": run.id,
        "flow": run.flow,
        "mapping": run.mapping,
        "status": run.status,
        "historical": run.historical,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": round(duration, 3) if duration is not None else None,
        "counts": dict(sorted(run.counts.items())),
        "watermark": run.watermark,
        "host": run.host,
        "pid": run.pid,
        "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        "reason": run.reason,
    }


def failures_table(
    failures: Sequence[RowFailure], limit: int = 50, title: str = "failed rows"
) -> Table:
    """The first failures, one line each: where, which field, why. Source text is shown, never
    obeyed: no markup, controls and bidi marks made visible (as in the reports)."""
    table = Table(
        title=f"{len(failures)} {title}" + (f" (first {limit})" if len(failures) > limit else "")
    )
    for column in ("location", "key", "field", "rule", "message"):
        table.add_column(column, overflow="fold")
    from pipeline.report.cells import visible  # noqa: PLC0415 - heavy package; rows exist now

    for failure in failures[:limit]:
        cells = (
            failure.source_location,
            failure.source_key,
            failure.field_path,
            failure.rule,
            failure.message,
        )
        table.add_row(*(Text(visible(scrub(cell or ""))) for cell in cells))  # data, not markup
    return table


def planned_table(planned: Sequence[Mapping[str, object]], limit: int = 200) -> Table:
    """What a status-sync dry run would push, one line per request (``--json`` lists all)."""
    more = f" (first {limit}; --json lists all)" if len(planned) > limit else ""
    table = Table(title=f"{len(planned)} status pushes it would make{more}")
    for column in ("invoice_id", "uuid", "state", "invoice_status", "error"):
        table.add_column(column, overflow="fold")
    from pipeline.report.cells import visible  # noqa: PLC0415 - heavy package; rows exist now

    for entry in planned[:limit]:
        error = entry.get("error_data")
        message = error.get("message") if isinstance(error, Mapping) else None
        cells = (
            entry.get("invoice_id"),
            entry.get("uuid"),
            entry.get("appzen_invoice_state"),
            entry.get("invoice_status"),
            message,
        )
        table.add_row(*(Text(visible(scrub(str(cell or "")))) for cell in cells))  # ERP text
    return table


def failure_json(failure: RowFailure) -> dict[str, object]:
    """A failure as JSON-ready data (the same fields the report has)."""
    return {
        "source_key": failure.source_key,
        "source_location": failure.source_location,
        "stage": failure.stage,
        "rule": failure.rule,
        "field_path": failure.field_path,
        "source_column": failure.source_column,
        "value": failure.value,
        "message": failure.message,
    }


def scrubbed(value: object) -> object:
    """``value`` (JSON-ready data) with every string scrubbed of secrets."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {str(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrubbed(v) for v in value]
    return value


def print_json(document: object) -> None:
    """Write ``document`` to stdout as one JSON document (ASCII, secrets scrubbed)."""
    sys.stdout.write(json.dumps(scrubbed(document), indent=2, ensure_ascii=True) + "\n")
    sys.stdout.flush()


def error(message: str, prefix: str = "error") -> None:
    """One clear message on stderr (secrets scrubbed; never wrapped mid-word)."""
    err_console.print(f"[bold red]{prefix}:[/] ", end="", markup=True)
    err_console.out(scrub(message), highlight=False)


VERBOSITY = 0
"""How many ``-v`` the command line was given (set by the CLI's main callback)."""


@contextlib.contextmanager
def progress_display(
    *, total: int | None = None, interval: float = 30.0
) -> Iterator[Callable[[RunSummary], None]]:
    """Follow a run while it goes; yields the job's ``on_progress`` callback. On a terminal, a
    live line on stderr (counts, rate, elapsed; done/total and the time remaining when ``total``,
    the invoices in scope, is known). Off a terminal (cron, a pipe), that line is logged at INFO
    every ``interval`` seconds and once at the end. ``-v`` adds a line per batch, either way."""
    log = logging.getLogger(RUN_LOGGER)
    if not err_console.is_terminal:
        with logged_progress(log, interval, total, per_batch=VERBOSITY > 0) as progress:
            yield progress
        return
    progress = RunProgress(total, on_batch=log.info if VERBOSITY > 0 else None)
    with Live(progress, console=err_console, transient=True, refresh_per_second=4):
        yield progress


def log_run_end(summary: RunSummary) -> None:
    """Off a terminal, the run's end lines in the log (INFO counts, WARNING failed invoices,
    ERROR the stop: :func:`pipeline.jobs.runlog.end_lines`); on a terminal the summary table
    says it all."""
    if not err_console.is_terminal:
        log_end(logging.getLogger(RUN_LOGGER), summary)


@contextlib.contextmanager
def activity(message: str) -> Iterator[None]:
    """A spinner on stderr with ``message`` while work without counts goes on (terminal only)."""
    if not err_console.is_terminal:
        yield
        return
    with err_console.status(message):
        yield
