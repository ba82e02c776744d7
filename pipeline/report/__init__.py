"""Failed-row reports of a run: a formula-safe CSV, a self-contained HTML page, a Markdown summary.

``write_reports(run, store.failures_for_run(run.id), out_dir)`` writes both files;
``report_rows`` is the same table as plain rows (for a Prefect table artifact) and
``summary_markdown`` the counts of one or more runs and their report files (for a Prefect
markdown artifact).
"""

from __future__ import annotations

from pipeline.report.cells import MAX_CELL_CHARS, cell, neutralise_formula, visible
from pipeline.report.hints import fix_hint
from pipeline.report.summary import summary_markdown
from pipeline.report.table import COLUMNS, report_rows
from pipeline.report.writer import ReportError, ReportPaths, report_paths, write_reports

__all__ = [
    "COLUMNS",
    "MAX_CELL_CHARS",
    "ReportError",
    "ReportPaths",
    "cell",
    "fix_hint",
    "neutralise_formula",
    "report_paths",
    "report_rows",
    "summary_markdown",
    "visible",
    "write_reports",
]
