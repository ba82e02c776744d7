"""The run summary in Markdown (for a Prefect markdown artifact): counts and links to the files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from pipeline.report.cells import cell
from pipeline.report.table import (
    STAGE_TITLES,
    counts_by_rule,
    counts_by_stage,
    utc_iso,
)
from pipeline.report.writer import ReportPaths
from pipeline.staging.records import RunRecord, StoredFailure

_PUNCTUATION: Final = re.compile(r"([!-/:-@\[-`{-~])")
"""ASCII punctuation: CommonMark lets every one be backslash-escaped to stand for itself."""


def md(text: str) -> str:
    """A cell as literal Markdown text: scrubbed, made visible, every punctuation escaped (so
    ``|``, ``*``, ``<`` or ``[`` from the data cannot format, link or split a table cell)."""
    return _PUNCTUATION.sub(r"\\\1", cell(text))


def _link(path: Path) -> str:
    uri = path.resolve().as_uri().replace("(", "%28").replace(")", "%29")
    return f"[{md(path.name)}]({uri})"


def summary_markdown(run: RunRecord, failures: Sequence[StoredFailure], paths: ReportPaths) -> str:
    """Counts by stage and by rule, the run's facts and links to the CSV and HTML reports."""
    rows = [{"stage": cell(s.failure.stage), "rule": cell(s.failure.rule)} for s in failures]
    what = f"{len(rows):,} failed rows" if len(rows) != 1 else "1 failed row"
    lines = [
        f"## Run {run.id}: {what if rows else 'no failed rows'}",
        "",
        f"Flow {md(run.flow)}, mapping {md(run.mapping)}, status **{md(run.status)}**, "
        f"started {md(utc_iso(run.started_at))}, "
        f"finished {md(utc_iso(run.finished_at)) or 'not yet'}"
        + (", historical" if run.historical else "")
        + ".",
        "",
        f"Reports: {_link(paths.html)} (to read) · {_link(paths.csv)} (every row, for Excel)",
    ]
    if rows:
        lines += ["", "| stage | what it means | rows |", "|---|---|---:|"]
        lines += [
            f"| {md(stage)} | {md(STAGE_TITLES.get(stage, ''))} | {count:,} |"
            for stage, count in counts_by_stage(rows)
        ]
        lines += ["", "| stage | rule | rows |", "|---|---|---:|"]
        lines += [
            f"| {md(stage)} | {md(rule)} | {count:,} |"
            for stage, rule, count in counts_by_rule(rows)
        ]
    return "\n".join(lines) + "\n"
