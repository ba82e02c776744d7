"""The CSV failed-row report: Excel-friendly (UTF-8 with BOM, CRLF) and safe against formulas."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import TextIO

from pipeline.report.cells import neutralise_formula
from pipeline.report.table import COLUMNS
from pipeline.staging.records import RunRecord

ENCODING = "utf-8-sig"
"""UTF-8 with a byte-order mark, so Excel does not read the file as the local code page."""

NO_FAILED_ROWS = "no failed rows"


def write_csv(run: RunRecord, rows: Sequence[dict[str, str]], out: TextIO) -> None:
    """Write the header and one line per row to ``out`` (opened with ``newline=""`` and
    :data:`ENCODING`); a run without failures gets one line saying "no failed rows"."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    if not rows:
        writer.writerow(_empty_line(run.id))
    for row in rows:
        writer.writerow([neutralise_formula(row[column]) for column in COLUMNS])


def _empty_line(run_id: int) -> list[str]:
    line = dict.fromkeys(COLUMNS, "")
    line["run id"], line["message"] = str(run_id), NO_FAILED_ROWS
    return list(line.values())
