"""How the CLI shows things: the live progress line, summary tables, run history, failures."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from rich.console import Console
from rich.live import Live
from rich.table import Table

from pipeline.failures import RowFailure
from pipeline.load.summary import RunSummary
from pipeline.redact import scrub
from pipeline.staging.records import RunRecord

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

SUMMARY_ROWS = (
    ("extracted", "invoices extracted"),
    ("mapped", "mapped"),
    ("unchanged", "unchanged (skipped)"),
    ("rejected_unchanged", "rejected before, unchanged (skipped)"),
    ("busy", "claimed by another worker (skipped)"),
    ("planned_create", "to create"),
    ("planned_update", "to update"),
    ("created", "created"),
    ("updated", "updated"),
    ("resent_after_crash", "resent after a crash (UPDATED)"),
    ("recreate_resent", "re-created (AppZen lost them)"),
    ("pushed", "statuses pushed"),
    ("pushed_error", "ERP errors pushed"),
    ("would_push", "statuses to push"),
    ("recreate", "unknown to AppZen (re-created next sync)"),
    ("failed_mapping", "failed: mapping"),
    ("failed_validation", "failed: validation"),
    ("failed_appzen", "failed: AppZen rejected"),
    ("failed_retries", "failed: retries exhausted"),
    ("failed_status_sync", "failed: status-sync"),
    ("requests", "AppZen requests"),
    ("retries", "retries"),
)


def summary_table(title: str, summary: RunSummary) -> Table:
    """The end-of-run table: counts by outcome, rate and duration."""
    name = f"{title} · run {summary.run_id}" if summary.run_id else f"{title} (dry run)"
    table = Table(title=f"{name} · {summary.mapping} · {summary.status}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, label in SUMMARY_ROWS:
        if summary.counts.get(key):
            style = "red" if key.startswith("failed") else None
            table.add_row(label, str(summary.counts[key]), style=style)
    table.add_row("rate", f"{summary.rate:.1f} requests/s")
    table.add_row("duration", f"{summary.duration_s:.1f} s")
    return table


def runs_table(runs: Sequence[RunRecord]) -> Table:
    """Run history: id, flow, mapping, status, times and the main counts."""
    table = Table(title="runs")
    for column in ("id", "flow", "mapping", "status", "started (UTC)", "s", "counts"):
        table.add_column(column)
    for run in runs:
        seconds = (
            f"{(run.finished_at - run.started_at).total_seconds():.1f}" if run.finished_at else ""
        )
        counts = ", ".join(f"{k}={v}" for k, v in sorted(run.counts.items()) if v)
        table.add_row(
            str(run.id),
            run.flow,
            run.mapping,
            run.status,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            seconds,
            counts,
        )
    return table


def failures_table(failures: Sequence[RowFailure], limit: int = 50) -> Table:
    """The first failures, one line each: where, which field, why."""
    table = Table(
        title=f"{len(failures)} failed rows"
        + (f" (first {limit})" if len(failures) > limit else "")
    )
    for column in ("location", "key", "field", "rule", "message"):
        table.add_column(column, overflow="fold")
    for failure in failures[:limit]:
        table.add_row(
            *(
                scrub(text or "")
                for text in (
                    failure.source_location,
                    failure.source_key,
                    failure.field_path,
                    failure.rule,
                    failure.message,
                )
            )
        )
    return table


@contextlib.contextmanager
def progress_display(*, enabled: bool) -> Iterator[Callable[[RunSummary], None]]:
    """A live line on stderr (extracted, sent, failed, current rate) while a run goes on."""
    if not enabled or not err_console.is_terminal:
        yield lambda summary: None
        return
    started = time.monotonic()
    with Live(console=err_console, transient=True, refresh_per_second=4) as live:

        def show(summary: RunSummary) -> None:
            c = summary.counts
            elapsed = max(time.monotonic() - started, 1e-6)
            live.update(
                f"extracted {c['extracted']:,} · sent {c['created'] + c['updated']:,} · "
                f"unchanged {c['unchanged']:,} · failed {summary.failed:,} · "
                f"{c['requests'] / elapsed:.1f} requests/s"
            )

        yield show
