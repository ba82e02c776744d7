"""Driving ``appzen-etl`` as an operator does: a project folder (mapping + source file), an
environment pointing at the test sandbox and a SQLite staging, and the command run as a
subprocess whose exit code, stdout, stderr and report files the tests read back."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
APPZEN_ETL = Path(sys.executable).with_name("appzen-etl")
FLAT_MAPPING = Path("mappings/flat_csv.yaml")
FLAT_SOURCE = Path("samples/flat_ap_export.csv")
TIMEOUT_S = 120

SETTING_PREFIXES = ("APPZEN_", "ERP_", "STAGING_", "REPORTS_", "BATCH_", "PROGRESS_")
"""Variables the pipeline's settings read: never inherited from the caller's environment."""

FLAT_COLUMNS = (
    *("invoice_no", "invoice_date", "due_date", "company_code", "supplier_no", "supplier_name"),
    *("supplier_vat_id", "supplier_country", "currency", "net_total", "vat_total", "gross_total"),
    *("status", "line_no", "line_text", "quantity", "unit", "unit_price", "line_net", "vat_rate"),
    *("vat_code", "gl_account", "cost_center"),
)
"""The columns of the flat AP export (``mappings/flat_csv.yaml``), in file order."""

RUN_LOG = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:DEBUG|INFO|WARNING|ERROR) pipeline\.run: .*\n?",
    re.MULTILINE,
)
"""A line of the run log a command writes on stderr off a terminal (progress and run-end lines)."""
REPORT_LINE = re.compile(r"^run (\d+) failed-row report \((csv|html)\): (.+)$", re.MULTILINE)


def invoice_row(invoice_no: str, **changes: str) -> dict[str, str]:
    """One valid single-line invoice of the flat CSV export (European formats), with changes."""
    row = {
        "invoice_no": invoice_no,
        "invoice_date": "04.09.2024",
        "due_date": "04.10.2024",
        "company_code": "DE01",
        "supplier_no": "V100002",
        "supplier_name": "Acme Bürobedarf GmbH",
        "supplier_vat_id": "DE123456789",
        "supplier_country": "DE",
        "currency": "EUR",
        "net_total": "100,00",
        "vat_total": "19,00",
        "gross_total": "119,00",
        "status": "APPROVED",
        "line_no": "1",
        "line_text": "Toner HP 26A",
        "quantity": "1",
        "unit": "EA",
        "unit_price": "100,00",
        "line_net": "100,00",
        "vat_rate": "19,00",
        "vat_code": "V19",
        "gl_account": "6815",
        "cost_center": "CC2100",
    }
    unknown = set(changes) - set(row)
    assert not unknown, f"not a column of the flat export: {unknown}"
    return row | changes


@dataclass(frozen=True)
class Result:
    """What one command did: its arguments, exit code and output."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> str:
        """stderr without the run log (progress and run-end lines): what the command says."""
        return RUN_LOG.sub("", self.stderr)

    def json(self) -> Any:
        """stdout as the one JSON document it must be."""
        return json.loads(self.stdout)

    def reports(self, run_id: int | None = None) -> dict[str, Path]:
        """The report paths the command printed (``{"csv": …, "html": …}``), of ``run_id`` or
        of the first run that printed any."""
        found: dict[int, dict[str, Path]] = {}
        for run, kind, path in REPORT_LINE.findall(self.stdout):
            found.setdefault(int(run), {})[kind] = Path(path)
        assert found, f"no report paths printed:\n{self}"
        return found[run_id] if run_id is not None else next(iter(found.values()))

    def __str__(self) -> str:
        return (
            f"$ appzen-etl {' '.join(self.args)}\nexit {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


BYTECODE_CACHE = Path(tempfile.gettempdir()) / "appzen-etl-tests-pycache"
"""Where CLI subprocesses keep compiled bytecode (outside the repository and the venv)."""


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without pipeline settings, plus ``extra``.

    Bytecode is cached in :data:`BYTECODE_CACHE`: with ``PYTHONDONTWRITEBYTECODE`` every command
    would compile pandas and the pipeline from source again (seconds of CPU per command), which
    no installed copy of the tool does.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    env.pop("COLUMNS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    return env | dict(extra)


@dataclass
class Project:
    """A folder as an operator has it: ``mappings/``, ``samples/``, staging and reports."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, base_url: str, **settings: str) -> Project:
        """A project using the flat CSV mapping, the sandbox at ``base_url`` and SQLite staging."""
        (root / "mappings").mkdir(parents=True, exist_ok=True)
        (root / "samples").mkdir(exist_ok=True)
        shutil.copy(REPO / FLAT_MAPPING, root / FLAT_MAPPING)
        env = {
            "APPZEN_BASE_URL": base_url,
            "APPZEN_SANDBOX": "true",  # base_url is a SandboxServer on a free port
            "STAGING_DATABASE_URL": f"sqlite:///{root / 'staging.db'}",
            "REPORTS_DIR": str(root / "reports"),
            "APPZEN_RATE_LIMIT": "500",
            "APPZEN_READ_TIMEOUT": "10",
            "APPZEN_RETRY_ATTEMPTS": "3",
        }
        return cls(root, env | settings)

    def write_invoices(self, rows: Sequence[Mapping[str, str]]) -> Path:
        """Write the flat CSV export the mapping reads (``;``-separated, UTF-8)."""
        path = self.root / FLAT_SOURCE
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, FLAT_COLUMNS, delimiter=";")
            writer.writeheader()
            writer.writerows(rows)
        return path

    def run(self, *args: str, env: Mapping[str, str] | None = None) -> Result:
        """Run ``appzen-etl *args`` in the project folder (stdin closed, output captured)."""
        done = subprocess.run(
            [str(APPZEN_ETL), *args],
            cwd=self.root,
            env=clean_environment(self.env | dict(env or {})),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=TIMEOUT_S,
            check=False,
        )
        return Result(tuple(args), done.returncode, done.stdout, done.stderr)

    def run_many(self, *calls: tuple[Sequence[str], Mapping[str, str] | None]) -> list[Result]:
        """Independent commands at once (each ``(args, env)``); results in order."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda call: self.run(*call[0], env=call[1]), calls))


def summary_tables(stdout: str) -> dict[str, dict[str, str]]:
    """The summary tables a command printed: title → {row label → value}."""
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 2:
            current[cells[0]] = cells[1]
        elif line and line[0] not in "┌├└┏┡":
            current = tables.setdefault(line.strip(), {})
    return {title: rows for title, rows in tables.items() if rows}


def read_csv_report(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV report (UTF-8 with BOM, CRLF)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def rows_by_key(rows: Sequence[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    """Report rows grouped by their ``source key`` cell."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        grouped.setdefault(row["source key"], []).append(row)
    return grouped


def total_requests(counts: Mapping[int, int]) -> int:
    """All answers the sandbox gave, whatever their status."""
    return sum(counts.values())
