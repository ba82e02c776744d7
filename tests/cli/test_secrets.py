"""No secret ever reaches the operator's screen, a log line or a report file.

Every command runs — success and failure paths, with ``--json`` and without, ``--verbose`` —
with known secret values set: the AppZen API and customer keys (accepted by a sandbox started
with exactly those credentials), a wrong API key, and passwords in the staging and ERP database
URLs (PostgreSQL on loopback with trust auth, so the passwords are carried but not needed). One
ERP row even holds the ERP password as its invoice date, so the failure text quotes it. Then
stdout, stderr and every report file are searched for each secret.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool
from typer.main import get_command

from pipeline.cli import app
from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import Credentials, SandboxServer
from tests.cli.support import REPO, Project, Result, read_csv_report
from tests.databases import pg_schema

pytestmark = pytest.mark.postgres

API_KEY = "sk-live-7Hq2-SECRET-api-key"
CUSTOMER_ID = "100094"
CUSTOMER_KEY = "ck-9Lm4-SECRET-customer-key"
WRONG_KEY = "sk-WRONG-3xX-SECRET-key"
STAGING_PASSWORD = "S3cr3t-staging-pw"
ERP_PASSWORD = "S3cr3t-erp-pw"
SECRETS = (API_KEY, CUSTOMER_KEY, WRONG_KEY, STAGING_PASSWORD, ERP_PASSWORD)

MAPPING = "mappings/sample_erp.yaml"
EVER = "2000-01-01"
CLOSED_PORT_URL = "postgresql+psycopg://postgres:{password}@127.0.0.1:1/none"


def with_password(url: str, password: str) -> str:
    """``postgresql+psycopg://postgres@…`` with ``password`` for the user."""
    return url.replace("://postgres@", f"://postgres:{password}@", 1)


@dataclass(frozen=True)
class Runs:
    """Every command's result by name, and the report folder."""

    results: dict[str, Result]
    reports_dir: Path
    planted: str


def _project(root: Path, sandbox: SandboxServer, erp_url: str, staging_url: str) -> Project:
    (root / "mappings").mkdir(parents=True)
    (root / "sql" / "sample_erp").mkdir(parents=True)
    shutil.copy(REPO / MAPPING, root / MAPPING)
    for query in ("extract.sql", "status.sql"):  # the sync's query and the status read's
        shutil.copy(REPO / "sql/sample_erp" / query, root / "sql/sample_erp" / query)
    env = {
        "APPZEN_BASE_URL": sandbox.base_url,
        "APPZEN_API_KEY": API_KEY,
        "APPZEN_CUSTOMER_ID": CUSTOMER_ID,
        "APPZEN_CUSTOMER_KEY": CUSTOMER_KEY,
        "ERP_DATABASE_URL": erp_url,
        "STAGING_DATABASE_URL": staging_url,
        "REPORTS_DIR": str(root / "reports"),
        "APPZEN_RATE_LIMIT": "500",
        "APPZEN_RETRY_ATTEMPTS": "2",
        "COLUMNS": "400",  # nothing wraps: a leaked secret would show whole
    }
    return Project(root, env)


def _plant(erp_url: str) -> tuple[str, str]:
    """Put the ERP password into one clean invoice's date text; name an unknown supplier.
    Returns ``(document_no of the planted invoice, supplier_id AppZen will reject)``."""
    engine = sa.create_engine(erp_url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            document_no, supplier_id = conn.execute(
                sa.text(
                    "SELECT document_no, supplier_id FROM erp_invoice "
                    "WHERE supplier_id IS NOT NULL ORDER BY invoice_key LIMIT 1"
                )
            ).one()
            conn.execute(
                sa.text("UPDATE erp_invoice SET invoice_date_text = :t WHERE document_no = :d"),
                {"t": f"x{ERP_PASSWORD}", "d": document_no},
            )
            other = conn.execute(
                sa.text(
                    "SELECT supplier_id FROM erp_invoice WHERE supplier_id IS NOT NULL "
                    "AND supplier_id <> :s ORDER BY invoice_key LIMIT 1"
                ),
                {"s": supplier_id},
            ).scalar_one()
    finally:
        engine.dispose()
    return str(document_no), str(other)


SEQUENCE: list[tuple[str, tuple[str, ...]]] = [
    ("mapping check", ("mapping", "check", MAPPING)),
    ("preview", ("preview", "-m", MAPPING, "--limit", "5")),
    ("sync dry run", ("sync", "-m", MAPPING, "--dry-run")),
    ("sync verbose", ("--verbose", "sync", "-m", MAPPING)),
    ("sync json", ("sync", "-m", MAPPING, "--json", "--force", "--since", EVER)),
    ("backfill json", ("backfill", "-m", MAPPING, "--from", "2000-01-01", "--to", "2099-12-31")),
    ("status-sync", ("status-sync", "-m", MAPPING)),
    ("retry-failed", ("retry-failed", "-m", MAPPING)),
    ("retry-failed json", ("-v", "retry-failed", "-m", MAPPING, "--json")),
]
"""Commands that change staging, in an operator's order."""

AT_ONCE: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
    ("runs", ("runs",), {}),
    ("runs json", ("runs", "--json"), {}),
    ("report", ("report",), {}),
    ("report csv json", ("report", "--format", "csv", "--json"), {}),
    ("mapping check json", ("mapping", "check", MAPPING, "--json"), {}),
    (
        "wrong key sync",
        ("sync", "-m", MAPPING, "--force", "--since", EVER),
        {"APPZEN_API_KEY": WRONG_KEY},
    ),
    (
        "staging unreachable",
        ("runs",),
        {"STAGING_DATABASE_URL": CLOSED_PORT_URL.format(password=STAGING_PASSWORD)},
    ),
    (
        "erp unreachable",
        ("mapping", "check", MAPPING, "--json"),
        {"ERP_DATABASE_URL": CLOSED_PORT_URL.format(password=ERP_PASSWORD)},
    ),
    ("bad setting", ("sync", "-m", MAPPING), {"APPZEN_RATE_LIMIT": "-1"}),
]
"""Commands that only read, or fail before changing anything: run side by side."""

AFTER: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
    (
        "wrong key retry json",
        ("-v", "retry-failed", "-m", MAPPING, "--json"),
        {"APPZEN_API_KEY": WRONG_KEY},
    ),
]
"""Run after those: beside the wrong-key sync it would find the invoices that sync holds
claimed for a moment and end ``partial`` (exit 4) instead of meeting the 401."""

if "verify" in get_command(app).commands:  # type: ignore[attr-defined]
    AT_ONCE += [
        ("verify", ("verify", "-m", MAPPING, "--sample", "5"), {}),
        ("verify json", ("verify", "-m", MAPPING, "--sample", "5", "--json"), {}),
        ("wrong key verify", ("verify", "-m", MAPPING), {"APPZEN_API_KEY": WRONG_KEY}),
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    root = tmp_path_factory.mktemp("secrets")
    with pg_schema("cli_erp") as erp_admin, pg_schema("cli_staging") as staging_admin:
        erp_url = with_password(erp_admin, ERP_PASSWORD)
        generate(erp_url, invoices=24, seed=11)
        planted, unknown = _plant(erp_url)
        credentials = Credentials(API_KEY, CUSTOMER_ID, CUSTOMER_KEY)
        with SandboxServer(credentials=credentials, unknown_suppliers=[unknown]) as sandbox:
            project = _project(
                root, sandbox, erp_url, with_password(staging_admin, STAGING_PASSWORD)
            )
            results = {name: project.run(*args) for name, args in SEQUENCE}
            parallel = project.run_many(*((args, env) for _, args, env in AT_ONCE))
            results |= {name: r for (name, _, _), r in zip(AT_ONCE, parallel, strict=True)}
            later = project.run_many(*((args, env) for _, args, env in AFTER))
            results |= {name: r for (name, _, _), r in zip(AFTER, later, strict=True)}
            yield Runs(results, root / "reports", planted)


def test_commands_ran_their_success_and_failure_paths(runs: Runs) -> None:
    """The search below is only worth something if the commands really did their work."""
    codes = {name: result.code for name, result in runs.results.items()}
    expected = {
        "mapping check": 1,  # dirty sample rows
        "sync verbose": 1,
        "sync json": 1,
        "backfill json": 1,
        "status-sync": 0,
        "runs": 0,
        "runs json": 0,
        "report": 0,
        "report csv json": 0,
        "wrong key sync": 2,
        "wrong key retry json": 2,
        "staging unreachable": 2,
        "erp unreachable": 2,
        "bad setting": 2,
    }
    assert {name: codes[name] for name in expected} == expected, runs.results
    created = runs.results["sync verbose"].stdout
    assert "created" in created
    sync = runs.results["sync json"].json()["runs"][0]
    assert sync["counts"]["updated"] > 0  # --force: everything sent again
    assert sync["counts"]["failed_appzen"] > 0  # the unknown supplier
    assert "401" in runs.results["wrong key sync"].stderr


def test_planted_secret_reached_the_report_scrubbed(runs: Runs) -> None:
    report = Path(runs.results["report csv json"].json()["csv"])
    rows = [row for row in read_csv_report(report) if row["source key"] == runs.planted]
    assert rows, f"{runs.planted} not in {report}"
    assert rows[0]["offending value"] == "x***"


def test_no_secret_in_any_output(runs: Runs) -> None:
    for name, result in runs.results.items():
        for secret in SECRETS:
            assert secret not in result.stdout, f"{name}: stdout shows {secret}"
            assert secret not in result.stderr, f"{name}: stderr shows {secret}"


def test_no_secret_in_any_report_file(runs: Runs) -> None:
    files = sorted(runs.reports_dir.iterdir())
    assert len(files) >= 8
    for path in files:
        text = path.read_text("utf-8-sig")
        for secret in SECRETS:
            assert secret not in text, f"{path.name} shows {secret}"


def test_no_traceback_on_any_path(runs: Runs) -> None:
    for name, result in runs.results.items():
        assert "Traceback" not in result.stderr, f"{name}:\n{result}"
        assert "Exception ignored" not in result.stderr, f"{name}:\n{result}"
