"""Row 4: peak RSS of a backfill of many invoices ÷ the same backfill of few, CSV and PostgreSQL.

Each backfill runs in a fresh process (:mod:`benchmarks.backfill_child`) with dry-run posting
(``SyncOptions(dry_run=True)``: extract, map, validate, serialize, hash, plan against staging;
nothing sent) and reports its own ``VmHWM``. Memory must not grow with the number of invoices.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.inputs import flat_csv, pg_schema, sample_erp
from benchmarks.report import Figure
from benchmarks.runs import SAMPLE_MAPPING

TARGET = 1.5


@dataclass(frozen=True, slots=True)
class Backfill:
    """One child run: its peak RSS, seconds and counts."""

    peak_mib: float
    seconds: float
    counts: dict[str, int]
    failures_kept: int

    @property
    def rate(self) -> float:
        """Invoices extracted per second (wall time of the run, imports excluded)."""
        return self.counts.get("extracted", 0) / self.seconds if self.seconds else 0.0


def backfill(mapping: Path, staging: Path, erp_url: str | None = None) -> Backfill:
    """Run one dry-run backfill in a fresh process; what it reported."""
    staging.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.backfill_child", str(mapping)]
    command += [f"sqlite:///{staging}", *([erp_url] if erp_url else [])]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"backfill child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Backfill(
        data["peak_rss_kib"] / 1024, data["seconds"], data["counts"], data["failures_kept"]
    )


def csv_pair(folder: Path, small: int, large: int) -> tuple[Backfill, Backfill]:
    """The CSV backfill of ``small`` and of ``large`` invoices (the files deleted after)."""
    results = []
    for invoices in (small, large):
        where = folder / f"csv-{invoices}"
        mapping = flat_csv(where, invoices)
        try:
            results.append(backfill(mapping, where / "staging.db"))
        finally:
            (where / "flat.csv").unlink(missing_ok=True)
    return results[0], results[1]


def pg_pair(folder: Path, small: int, large: int) -> tuple[Backfill, Backfill]:
    """The PostgreSQL (sample ERP) backfill of ``small`` and of ``large`` invoices."""
    results = []
    for invoices in (small, large):
        with pg_schema() as url:
            sample_erp(url, invoices)
            results.append(backfill(SAMPLE_MAPPING, folder / f"pg-{invoices}.db", url))
    return results[0], results[1]


def figure(row: str, source: str, small: Backfill, large: Backfill) -> Figure:
    """The row for one source kind."""
    ratio = large.peak_mib / small.peak_mib
    many, few = large.counts.get("extracted", 0), small.counts.get("extracted", 0)
    return Figure(
        row=row,
        what=f"Peak RSS, dry-run backfill from {source}: {many:,} ÷ {few:,} invoices",
        measured=f"{large.peak_mib:,.0f} MiB ({many:,} invoices, {large.rate:,.0f}/s)",
        baseline=f"{small.peak_mib:,.0f} MiB ({few:,} invoices, {small.rate:,.0f}/s)",
        ratio=ratio,
        target=f"<= {TARGET}",
        met=ratio <= TARGET,
        detail={
            "large": {"peak_mib": large.peak_mib, "seconds": large.seconds, **large.counts},
            "small": {"peak_mib": small.peak_mib, "seconds": small.seconds, **small.counts},
            "failures_kept": large.failures_kept,
        },
    )
