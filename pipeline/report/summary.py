"""The run summary in Markdown (the Prefect markdown artifact): counts by outcome per run, a total
for several runs of one flow, the rate, duration, fatal stop and report files of each run."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Final

from pipeline.redact import scrub
from pipeline.report.cells import cell
from pipeline.summary import RunSummary

_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")
"""ASCII punctuation: CommonMark lets every one be backslash-escaped to stand for itself."""


def md(text: str) -> str:
    """A cell as literal Markdown text: scrubbed, made visible, every punctuation escaped (so
    ``|``, ``*``, ``<`` or ``[`` from the data cannot format, link or split a table cell)."""
    return _PUNCTUATION.sub(r"\\\1", cell(text))


def summary_markdown(title: str, summaries: Sequence[RunSummary], notes: Sequence[str] = ()) -> str:
    """``# title``, a total when several runs of one flow are summed (a backfill's partitions),
    each run's counts by outcome, rate, duration, fatal stop and report files, then ``notes``
    (Markdown the caller built, e.g. a table of partitions). Registered secrets are scrubbed."""
    lines = [f"# {md(title)}", ""]
    if len(summaries) > 1 and len({s.flow for s in summaries}) == 1:
        lines += _total_section(summaries)
    for summary in summaries:
        lines += _run_section(summary)
    lines += list(notes)
    return scrub("\n".join(lines) + "\n")


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
    if summary.reports:
        csv, html = summary.reports.get("csv", ""), summary.reports.get("html", "")
        lines += [f"Failed-row report: {md(html)} (HTML), {md(csv)} (CSV)", ""]
    return lines
