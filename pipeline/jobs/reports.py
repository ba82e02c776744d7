"""The failed-row reports of a finished run, written and attached to its summary (every job)."""

from __future__ import annotations

from pipeline.report import write_reports
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary


def attach_reports(store: StagingStore, settings: Settings, summary: RunSummary) -> RunSummary:
    """Write the CSV and HTML failed-row reports of a recorded run into ``settings.reports_dir``
    and put their absolute paths in ``summary.reports``; a dry run (no run record) has none.
    Returns ``summary``."""
    if summary.run_id is None:
        return summary
    run = store.get_run(summary.run_id)
    if run is None:
        return summary
    paths = write_reports(run, store.failures_for_run(summary.run_id), settings.reports_dir)
    summary.reports = {"csv": str(paths.csv.resolve()), "html": str(paths.html.resolve())}
    return summary
