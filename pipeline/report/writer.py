"""Writing a run's failed-row reports: ``run-<id>-failures.csv`` and ``.html``, atomically."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.errors import TerminalError
from pipeline.report.csvreport import ENCODING as CSV_ENCODING
from pipeline.report.csvreport import write_csv
from pipeline.report.htmlreport import html_lines
from pipeline.report.invoices import invoice_entries
from pipeline.report.table import report_rows
from pipeline.staging.ledger import LedgerEntry
from pipeline.staging.records import RunRecord, StoredFailure


class ReportError(TerminalError):
    """A report could not be written (the message names the file and the fix)."""


@dataclass(frozen=True, slots=True)
class ReportPaths:
    """Where a run's reports were written."""

    csv: Path
    html: Path


def report_paths(run_id: int, out_dir: Path) -> ReportPaths:
    """The report files of run ``run_id`` in ``out_dir``."""
    stem = f"run-{run_id}-failures"
    return ReportPaths(csv=out_dir / f"{stem}.csv", html=out_dir / f"{stem}.html")


def write_reports(
    run: RunRecord,
    failures: Sequence[StoredFailure],
    out_dir: Path,
    *,
    ledger: Mapping[str, LedgerEntry] | None = None,
    carried: Sequence[LedgerEntry] = (),
    document_url: str | None = None,
) -> ReportPaths:
    """Write the CSV and HTML reports of ``run`` into ``out_dir`` (created if missing); a run
    without failures still gets both files, saying "no failed rows". ``ledger`` names the
    invoices (number, supplier, total …) by key; ``carried`` are open failures of earlier runs
    that stay on the report until they are delivered (their latest reasons are listed);
    ``document_url`` (the mapping's checked template) links each invoice to its ERP document."""
    strays = sorted({f.run_id for f in failures if f.run_id != run.id})
    if strays:
        raise ValueError(
            f"write_reports: run {run.id} was given failures of run(s) {strays}; pass "
            f"store.failures_for_run({run.id})"
        )
    paths = report_paths(run.id, out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ReportError(
            f"cannot create the report directory {out_dir}: {error.strerror}; "
            "choose a writable directory"
        ) from error
    known = dict(ledger or {}) | {entry.invoice_id: entry for entry in carried}
    carried_rows = [
        StoredFailure(
            reason, entry.last_run_id, entry.mapping, entry.first_seen_at, entry.last_seen_at
        )
        for entry in carried
        for reason in entry.reasons
        if entry.invoice_id not in {f.failure.source_key for f in failures}
    ]
    rows = report_rows([*failures, *carried_rows], known)
    entries = invoice_entries(failures, known, carried)
    _write(paths.csv, CSV_ENCODING, lambda out: write_csv(run, rows, out))
    _write(
        paths.html,
        "utf-8",
        lambda out: out.writelines(html_lines(run, rows, paths.csv.name, entries, document_url)),
    )
    return paths


def _write(path: Path, encoding: str, fill: Callable[[TextIO], None]) -> None:
    """Write ``path`` through a temporary file in the same directory, then rename it into place:
    a reader never sees half a report."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("x", encoding=encoding, newline="") as out:
            fill(out)
        os.replace(temporary, path)
    except OSError as error:
        raise ReportError(
            f"cannot write the report {path}: {error.strerror or error}; check the directory is "
            "writable and has space"
        ) from error
    finally:
        temporary.unlink(missing_ok=True)
