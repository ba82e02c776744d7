"""The run summary in Markdown (the Prefect markdown artifact): counts by outcome per run, a total
for several runs of one flow, the rate, duration, fatal stop, the failed invoices themselves (a
table of the first :data:`INVOICE_ROWS`), where the failed-row report is (a link when
APPZEN_REPORTS_URL is set) and the command that writes it again anywhere."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Final

from pipeline.redact import scrub
from pipeline.report.cells import cell
from pipeline.report.invoices import InvoiceEntry
from pipeline.summary import RunSummary

INVOICE_ROWS: Final = 50
"""Failed invoices a run's section lists at most (the report has them all)."""

_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")
"""ASCII punctuation: CommonMark lets every one be backslash-escaped to stand for itself."""


def md(text: str) -> str:
    """A cell as literal Markdown text: scrubbed, made visible, every punctuation escaped (so
    ``|``, ``*``, ``<`` or ``[`` from the data cannot format, link or split a table cell)."""
    return _PUNCTUATION.sub(r"\\\1", cell(text))


def summary_markdown(
    title: str,
    summaries: Sequence[RunSummary],
    notes: Sequence[str] = (),
    invoices: Mapping[int, Sequence[InvoiceEntry]] | None = None,
) -> str:
    """``# title``, a total when several runs of one flow are summed (a backfill's partitions),
    each run's counts by outcome, rate, duration, fatal stop, its failed invoices (``invoices``
    by run id: number, supplier, total, reason), its report (``reports["url"]`` as a link, else
    the paths) and the command that writes the report again, then ``notes`` (Markdown the caller
    built, e.g. a table of partitions). Registered secrets are scrubbed."""
    lines = [f"# {md(title)}", ""]
    if len(summaries) > 1 and len({s.flow for s in summaries}) == 1:
        lines += _total_section(summaries)
    for summary in summaries:
        lines += _run_section(summary)
        if summary.run_id is not None:
            lines += invoice_table((invoices or {}).get(summary.run_id, ()))
    lines += list(notes)
    return scrub("\n".join(lines) + "\n")


def invoice_table(entries: Sequence[InvoiceEntry], limit: int = INVOICE_ROWS) -> list[str]:
    """The failed invoices as a Markdown table (the first ``limit``, then ``and N more``): ERP
    key, invoice number, supplier, total and currency, reason; nothing when there are none."""
    if not entries:
        return []
    lines = [
        f"### {len(entries)} failed invoice{'' if len(entries) == 1 else 's'}",
        "",
        "| invoice | number | supplier | total | reason |",
        "|---|---|---|---:|---|",
    ]
    for entry in entries[:limit]:
        facts = entry.facts
        supplier = " ".join(x for x in (facts.supplier_id, facts.supplier_name) if x)
        total = " ".join(x for x in (facts.total_amount, facts.currency) if x)
        cells = (entry.key, facts.invoice_number, supplier, total, _reason(entry))
        lines.append("| " + " | ".join(md(text or "") for text in cells) + " |")
    if len(entries) > limit:
        lines += ["", f"and {len(entries) - limit} more (the report lists them all)"]
    return [*lines, ""]


def _reason(entry: InvoiceEntry) -> str:
    if not entry.problems:
        return entry.reason
    first = entry.problems[0]
    where = f" ({', '.join(first.fields[:3])}{' …' if len(first.fields) > 3 else ''})"
    return f"{entry.reason}{where if first.fields else ''}: {first.message}"


def _total_section(summaries: Sequence[RunSummary]) -> list[str]:
    total: Counter[str] = Counter()
    for summary in summaries:
        total.update(summary.counts)
    return [
        f"## Total of {len(summaries)} runs",
        "",
        "| outcome | count |",
        "|---|---:|",
        *(f"| {md(k)} | {v} |" for k, v in sorted(total.items()) if v),
        "",
    ]


def _run_section(summary: RunSummary) -> list[str]:
    heading = f"{summary.flow} · run {summary.run_id} · {summary.mapping} · {summary.status}"
    lines = [
        f"## {md(heading)}" + (" · historical" if summary.historical else ""),
        "",
        "| outcome | count |",
        "|---|---:|",
        *(f"| {md(k)} | {v} |" for k, v in sorted(summary.counts.items()) if v),
    ]
    if summary.rate:
        lines.append(f"| rate (requests/s) | {summary.rate:.1f} |")
    lines += [f"| duration (s) | {summary.duration_s:.1f} |", ""]
    if summary.fatal:
        lines += [f"**Stopped:** {md(summary.fatal)}", ""]
    url = summary.reports.get("url")
    if url:
        lines += [f"Failed-row report: [{md(url.rsplit('/', 1)[-1])}](<{url}>)", ""]
    elif summary.reports:
        csv, html = summary.reports.get("csv", ""), summary.reports.get("html", "")
        lines += [f"Failed-row report: {md(html)} (HTML), {md(csv)} (CSV) on the worker", ""]
    if summary.run_id is not None and not summary.dry_run:
        command = f"appzen-etl report --run {summary.run_id}"
        lines += [f"The full report, written again anywhere from staging: `{command}`", ""]
    return lines
