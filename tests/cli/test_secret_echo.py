"""AppZen echoes the credentials in an error text: nothing stores them, so a report regenerated
later in a shell that knows no secret shows none.

The sandbox runs with its own credentials and ``echo_credentials`` on: every refusal quotes the
request's ``x-api-key`` and ``customer-key`` as header echoes and bare. A sync (the keys in its
environment) has one invoice refused; then ``report --run 1`` runs in CSV and HTML with no
credential in the environment. The staging database's files, the reports and every output are
searched for the keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.devkit.sandbox import Credentials, SandboxServer
from tests.cli.support import FLAT_MAPPING, Project, Result, invoice_row, read_csv_report

API_KEY = "sk-live-ECHO-4f9a-api-key"
CUSTOMER_ID = "100094"
CUSTOMER_KEY = "ck-live-ECHO-77b1-customer-key"
SECRETS = (API_KEY, CUSTOMER_KEY)
KEYS = {
    "APPZEN_API_KEY": API_KEY,
    "APPZEN_CUSTOMER_ID": CUSTOMER_ID,
    "APPZEN_CUSTOMER_KEY": CUSTOMER_KEY,
}


@dataclass(frozen=True)
class Echoed:
    """The sync that met the echo, the reports regenerated without secrets, the project."""

    project: Project
    sync: Result
    csv: Result
    html: Result


@pytest.fixture(scope="module")
def echoed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Echoed]:
    credentials = Credentials(API_KEY, CUSTOMER_ID, CUSTOMER_KEY)
    with SandboxServer(
        credentials=credentials, echo_credentials=True, unknown_suppliers=["V-UNKNOWN"]
    ) as sandbox:
        project = Project.create(tmp_path_factory.mktemp("echo") / "project", sandbox.base_url)
        project.write_invoices([invoice_row("OK-1"), invoice_row("REJ-1", supplier_no="V-UNKNOWN")])
        sync = project.run("-v", "sync", "-m", str(FLAT_MAPPING), env=KEYS)
        kept = project.root / "sync-reports"  # the reports below are written anew, from staging
        Path(project.env["REPORTS_DIR"]).rename(kept)
        csv = project.run("report", "--run", "1", "--format", "csv")
        html = project.run("report", "--run", "1", "--format", "html")
        yield Echoed(project, sync, csv, html)


def test_the_sync_met_the_echo(echoed: Echoed) -> None:
    """The search below is worth something only if AppZen really refused REJ-1 with an echo."""
    assert echoed.sync.code == 1, echoed.sync
    assert echoed.csv.code == 0, echoed.csv
    assert echoed.html.code == 0, echoed.html
    assert not any(name in echoed.project.env for name in KEYS)  # the report knew no secret
    rows = read_csv_report(echoed.project.root / "sync-reports" / "run-1-failures.csv")
    refused = [row for row in rows if row["source key"] == "REJ-1"]
    assert refused, rows
    message = refused[0]["message"]
    assert "is not a supplier of this customer" in message
    assert "x-api-key: ***" in message
    assert "customer-key: ***" in message
    assert "[caller ***/***]" in message  # the bare echo: scrubbed as a registered secret


def test_staging_stores_no_secret(echoed: Echoed) -> None:
    files = sorted(echoed.project.root.glob("staging.db*"))
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, f"{path.name} holds {secret}"
    with sqlite3.connect(echoed.project.root / "staging.db") as conn:
        dump = "\n".join(conn.iterdump())
    assert "is not a supplier of this customer" in dump
    assert "x-api-key: ***" in dump


def test_reports_regenerated_without_secrets_show_none(echoed: Echoed) -> None:
    paths = [Path(echoed.csv.stdout.strip()), Path(echoed.html.stdout.strip())]
    assert [path.suffix for path in paths] == [".csv", ".html"]
    for path in paths:
        text = path.read_text("utf-8-sig")
        assert "REJ-1" in text
        for secret in SECRETS:
            assert secret not in text, f"{path.name} shows {secret}"


def test_no_output_shows_a_secret(echoed: Echoed) -> None:
    for result in (echoed.sync, echoed.csv, echoed.html):
        for secret in SECRETS:
            assert secret not in result.stdout, f"{result.args}: stdout shows {secret}"
            assert secret not in result.stderr, f"{result.args}: stderr shows {secret}"


def test_no_report_file_holds_a_secret(echoed: Echoed) -> None:
    files = [
        *Path(echoed.project.env["REPORTS_DIR"]).iterdir(),
        *(echoed.project.root / "sync-reports").iterdir(),
    ]
    assert len(files) >= 3
    for path in files:
        text = path.read_text("utf-8-sig")
        for secret in SECRETS:
            assert secret not in text, f"{path.name} shows {secret}"
