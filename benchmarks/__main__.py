"""``python -m benchmarks [--quick] [--only 1,3]``: run the benchmarks, print one table, and write
it to ``benchmarks/results/latest.json`` and ``latest.md``."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import extraction, mapping, memory, posting, rerun, statusread
from benchmarks.inputs import mariadb_database, pg_schema, sample_erp
from benchmarks.report import Figure, render_text, this_machine, write_results
from benchmarks.runs import settings_for, store_for
from benchmarks.sandbox import SandboxProcess
from benchmarks.seed import seed_sent

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = ("1", "2", "3", "4", "5", "6", "7", "8", "9")


@dataclass(frozen=True, slots=True)
class Scale:
    """How much work each row does."""

    quota_invoices: int
    """Invoices posted at the quota per configuration (row 1)."""
    posted: int
    """Invoices posted with no quota (row 2)."""
    staged: int
    """Invoices staged as sent before rerunning (rows 5, 6)."""
    mapping: int
    """Invoices mapped per repeat (row 3)."""
    memory: tuple[int, int]
    """Invoices of the small and the large backfill (row 4)."""
    status_read: int
    """Invoices staged under a status read (row 7)."""
    remembered: int
    """Invoices posted per run at the quota, first and remembered (row 8)."""
    extraction: int
    """Invoices extracted, mapped and planned beside a raw read (row 9)."""


FULL = Scale(
    quota_invoices=600,
    posted=20_000,
    staged=100_000,
    mapping=20_000,
    memory=(10_000, 1_000_000),
    status_read=1_000_000,
    remembered=2_000,
    extraction=20_000,
)
QUICK = Scale(
    quota_invoices=200,
    posted=2_000,
    staged=5_000,
    mapping=5_000,
    memory=(2_000, 20_000),
    status_read=20_000,
    remembered=300,
    extraction=2_000,
)


def _say(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def run(rows: set[str], scale: Scale, folder: Path) -> list[Figure]:
    """Every figure of the rows asked for, in row order."""
    figures: list[Figure] = []
    if "3" in rows:
        _say(f"row 3: mapping {scale.mapping:,} invoices (CPU time, best of 5)")
        figures.append(mapping.row3(scale.mapping, repeats=5))
    if "1" in rows:
        _say(f"row 1: posting {scale.quota_invoices} invoices at the quota, twice")
        url = f"sqlite:///{folder / 'erp-quota.db'}"
        sample_erp(url, scale.quota_invoices)
        figures += posting.row1(url, folder / "quota", scale.quota_invoices)
    if "8" in rows:
        _say(f"row 8: posting {scale.remembered:,} invoices at 2x the quota, then as many again")
        urls = (f"sqlite:///{folder / 'erp-first.db'}", f"sqlite:///{folder / 'erp-next.db'}")
        for seed, url in enumerate(urls, start=81):
            sample_erp(url, scale.remembered, seed=seed)
        figures += posting.row8(urls, folder / "remember", scale.remembered)
    if "2" in rows:
        figures.append(_posted_row(scale, folder))
    if rows & {"5", "6"}:
        figures += _staged_rows(rows, scale, folder)
    if "5" in rows:
        figures.append(_rerun_mariadb(scale, folder))
    if "4" in rows:
        figures += _memory_rows(scale, folder)
    if "9" in rows:
        figures += _extraction_rows(scale, folder)
    if "7" in rows:
        work = folder / "status-read"
        work.mkdir()
        figures.append(statusread.row7(work, scale.status_read, say=_say))
    return sorted(figures, key=lambda figure: figure.row)


def _posted_row(scale: Scale, folder: Path) -> Figure:
    with pg_schema() as url:
        _say(f"row 2: sample ERP of {scale.posted:,} invoices (PostgreSQL), wrk, a backfill")
        sample_erp(url, scale.posted)
        work = folder / "posted"
        work.mkdir()
        return posting.row2(url, work, concurrency=32)


def _staged_rows(rows: set[str], scale: Scale, folder: Path) -> list[Figure]:
    with pg_schema() as url:
        _say(f"rows 5, 6: sample ERP of {scale.staged:,} invoices (PostgreSQL), staged as sent")
        sample_erp(url, scale.staged)
        work = folder / "staged"
        work.mkdir()
        figures = []
        with SandboxProcess() as sandbox:
            settings = settings_for(sandbox.base_url, url, work, rate=10_000)
            with store_for(settings) as store:
                seeded = seed_sent(store, sandbox, url)
            if "5" in rows:
                _say("row 5: rerun over unchanged invoices")
                figures.append(rerun.row5(url, work, sandbox, seeded))
            if "6" in rows:
                _say("row 6: status-sync with 1 % changed")
                figures.append(rerun.row6(url, work, sandbox))
        return figures


def _rerun_mariadb(scale: Scale, folder: Path) -> Figure:
    """Row 5b: row 5 with the sample ERP on MariaDB (staging in SQLite as for row 5)."""
    with mariadb_database() as url:
        _say(f"row 5b: sample ERP of {scale.staged:,} invoices (MariaDB), staged as sent")
        sample_erp(url, scale.staged)
        work = folder / "staged-mariadb"
        work.mkdir()
        with SandboxProcess() as sandbox:
            settings = settings_for(sandbox.base_url, url, work, rate=10_000)
            with store_for(settings) as store:
                seeded = seed_sent(store, sandbox, url)
            _say("row 5b: rerun over unchanged invoices (MariaDB)")
            return rerun.row5(url, work, sandbox, seeded, row="5b", database="MariaDB")


def _extraction_rows(scale: Scale, folder: Path) -> list[Figure]:
    figures = []
    databases = (("9a", "PostgreSQL", pg_schema), ("9b", "MariaDB", mariadb_database))
    for row, name, database in databases:
        with database() as url:
            _say(f"row {row}: sample ERP of {scale.extraction:,} invoices ({name}), read twice")
            sample_erp(url, scale.extraction)
            figures.append(extraction.row9(row, name, url, folder / f"extraction-{row}"))
    return figures


def _memory_rows(scale: Scale, folder: Path) -> list[Figure]:
    small, large = scale.memory
    _say(f"row 4: dry-run backfills from CSV, {small:,} and {large:,} invoices")
    csv_small, csv_large = memory.csv_pair(folder / "memory", small, large)
    _say(f"row 4: dry-run backfills from PostgreSQL, {small:,} and {large:,} invoices")
    pg_small, pg_large = memory.pg_pair(folder / "memory", small, large)
    return [
        memory.figure("4a", "CSV", csv_small, csv_large),
        memory.figure("4b", "PostgreSQL", pg_small, pg_large),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run, print the table, write ``latest.json`` / ``latest.md``; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", default=",".join(ROWS), help="rows to run, e.g. 1,3")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results are written")
    args = parser.parse_args(argv)
    rows = {row.strip() for row in args.only.split(",") if row.strip()}
    unknown = rows - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; rows are {', '.join(ROWS)}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="appzen-bench-") as folder:
        figures = run(rows, QUICK if args.quick else FULL, Path(folder))
    seconds = time.perf_counter() - started
    sys.stdout.write(render_text(figures))
    machine = this_machine()
    json_path, md_path = write_results(args.out, figures, machine, seconds)
    sys.stdout.write(f"\n{machine.describe()}; {seconds:.0f} s. Written: {json_path}, {md_path}\n")
    return 1 if any(figure.met is False for figure in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
