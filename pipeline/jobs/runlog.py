"""What a run says in a log: the lines that close it (the one place that formats them).

Every caller that logs the end of a run (the Prefect flows, the CLI off a terminal) takes its
lines from :func:`end_lines` and logs each at its level; nothing else formats them:

- INFO, always: ``sync run 7 (sample_erp): succeeded in 12.3 s; extracted 200, created 150, …``
  (never an empty tail: a run that read nothing says so);
- WARNING, when invoices failed: how many, the amount at risk per currency when the totals could
  be read, and where the failed-row report is (a URL when ``APPZEN_REPORTS_URL`` gives one);
- ERROR, when the run stopped (an outage, the day's budget, a fatal answer, the source): the
  one-line reason.

Every line is scrubbed of secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from pipeline.redact import scrub
from pipeline.summary import RunSummary, shown_status

if TYPE_CHECKING:
    from pipeline.jobs.backfill import BackfillPartition

LOGGER = "pipeline.run"
"""The logger the CLI writes progress and run-end lines to (the flows use their run logger)."""

COUNT_ORDER = (
    "extracted",
    "mapped",
    "unchanged",
    "rejected_unchanged",
    "busy",
    "planned_create",
    "planned_update",
    "created",
    "updated",
    "status_read",
    "status_changed",
    "pushed",
    "pushed_error",
    "would_push",
    "left_pending",
)
"""Counts the INFO line names first, in this order (the rest follow by name)."""
QUIET_COUNTS = frozenset({"requests", "retries", "budget_used"})
"""Counts the INFO line leaves to the summary (requests are said as a rate)."""

Line = tuple[int, str]
"""A log level and its message."""


def end_lines(summary: RunSummary, report: str | None = None) -> list[Line]:
    """The lines that close ``summary``'s run: INFO always, WARNING when invoices failed, ERROR
    when it stopped. ``report`` is where the failed-row report can be read (default: the HTML
    report's path)."""
    lines: list[Line] = [(logging.INFO, scrub(_done_line(summary)))]
    if summary.failed:
        lines.append((logging.WARNING, scrub(_failed_line(summary, report))))
    if summary.fatal:
        lines.append((logging.ERROR, scrub(f"{_name(summary)} stopped: {summary.fatal}")))
    return lines


def log_end(
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    summary: RunSummary,
    report: str | None = None,
) -> None:
    """Log :func:`end_lines` of ``summary`` on ``logger``."""
    for level, message in end_lines(summary, report):
        logger.log(level, message)


def _name(summary: RunSummary) -> str:
    run = f"run {summary.run_id}" if summary.run_id is not None else "dry run"
    return f"{summary.flow} {run} ({summary.mapping})"


def _done_line(summary: RunSummary) -> str:
    status = shown_status(summary.status, summary.failed)
    counts = counts_text(summary.counts) or "nothing read, nothing sent"
    rate = f"; {summary.rate:.1f} requests/s" if summary.rate else ""
    reason = f"; {summary.reason}" if summary.reason and summary.reason != summary.fatal else ""
    return f"{_name(summary)}: {status} in {summary.duration_s:.1f} s; {counts}{rate}{reason}"


def counts_text(counts: Mapping[str, int]) -> str:
    """``extracted 200, created 150, failed_mapping 3``: the non-zero counts, main ones first."""
    named = [k for k in COUNT_ORDER if counts.get(k)]
    named += sorted(k for k in counts if counts[k] and k not in COUNT_ORDER + tuple(QUIET_COUNTS))
    return ", ".join(f"{key} {counts[key]:,}" for key in named)


def _failed_line(summary: RunSummary, report: str | None) -> str:
    where = report or summary.reports.get("url") or summary.reports.get("html")
    text = f"{_name(summary)}: {_invoices(summary.failed)} failed"
    risk = at_risk_text(summary.at_risk, summary.at_risk_unknown)
    if risk:
        text += f"; amount at risk {risk}"
    if where:
        text += f"; failed-row report: {where}"
    if summary.run_id is not None:
        text += f" (again anywhere: appzen-etl report --run {summary.run_id})"
    return text


def at_risk_text(sums: Mapping[str, str], unknown: int = 0) -> str:
    """``EUR 1,234.50, USD 20.00 (2 invoices without a readable total)``; empty when nothing is
    known."""
    parts = [f"{currency} {_money(amount)}" for currency, amount in sums.items()]
    text = ", ".join(parts)
    if unknown and text:
        text += f" (and {_invoices(unknown)} without a readable total)"
    return text


def _money(amount: str) -> str:
    try:
        return f"{Decimal(amount):,.2f}"
    except InvalidOperation:
        return amount


def _invoices(count: int) -> str:
    return f"{count:,} invoice{'' if count == 1 else 's'}"


def partition_started(part: BackfillPartition, total: int) -> str:
    """``backfill partition 2 of 4 (after …, up to …): started``, for a backfill's own log."""
    return scrub(f"backfill partition {part.index} of {total} ({_span(part)}): started")


def partition_ended(
    part: BackfillPartition, total: int, state: str, summary: RunSummary | None
) -> Line:
    """The line a backfill logs when a partition ends: its state, its run's status and counts;
    INFO when it completed, else WARNING."""
    text = f"backfill partition {part.index} of {total} ({_span(part)}): {state}"
    if summary is None:
        text += "; it left no run in staging"
    else:
        counts = counts_text(summary.counts) or "nothing read, nothing sent"
        text += f"; {_name(summary)} {summary.status}: {counts}"
        if summary.fatal:
            text += f"; stopped: {summary.fatal}"
    return (logging.INFO if state == "Completed" else logging.WARNING, scrub(text))


def _span(part: BackfillPartition) -> str:
    return f"after {part.since or 'the beginning'}, up to {part.until or 'now'}"
