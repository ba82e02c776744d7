"""The source fails, as the operator sees it: ``appzen-etl sync`` exits 2 with one ``stopped:``
line naming the source and the fix, and the failed night is not invisible: ``runs`` and
``runs --json`` list the run ``failed`` with that line as its reason, and its report says it.
No password is shown anywhere. Once the source reads, the next sync sends everything."""

from __future__ import annotations

import socket

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import FLAT_MAPPING, REPO, REPORT_LINE, Project, Result, invoice_row

KEYS = ["SRC-1", "SRC-2"]
PASSWORD = "erp-Pa55-w0rd"


def assert_stopped(result: Result, *phrases: str) -> str:
    """Exit 2, one ``stopped:`` line on stderr naming ``phrases``, no traceback; the line."""
    assert result.code == 2, result
    lines = [line for line in result.messages.splitlines() if line.strip()]
    assert len(lines) == 1, result
    [line] = lines
    assert line.startswith("stopped: "), line
    for phrase in phrases:
        assert phrase in line, line
    return line.removeprefix("stopped: ")


def assert_listed_failed(project: Project, reason: str) -> None:
    """``runs --json`` and ``runs`` show the one run ``failed`` with ``reason``."""
    [run] = project.run("runs", "--json").json()["runs"]
    assert (run["flow"], run["status"], run["reason"]) == ("sync", "failed", reason), run
    table = project.run("runs")
    assert table.code == 0, table
    assert f"run {run['run_id']}: {reason[:40]}" in " ".join(table.stdout.split()), table


def test_a_missing_export_is_a_failed_run_in_the_history_and_exit_2(
    project: Project, sandbox: SandboxServer
) -> None:
    result = project.run("sync", "-m", str(FLAT_MAPPING))

    reason = assert_stopped(result, "samples/flat_ap_export.csv", "does not exist")
    assert_listed_failed(project, reason)
    reports = {kind: path for _, kind, path in REPORT_LINE.findall(result.stdout)}
    html = (project.root / reports["html"]).read_text("utf-8")
    assert "<dt>Reason</dt>" in html
    assert "does not exist" in html
    assert sandbox.state.invoices() == {}

    project.write_invoices([invoice_row(key) for key in KEYS])
    again = project.run("sync", "-m", str(FLAT_MAPPING), "--json")
    assert again.code == 0, again
    assert sorted(sandbox.state.invoices()) == KEYS


def test_an_unreachable_erp_database_is_a_failed_run_without_its_password(
    project: Project, sandbox: SandboxServer
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    erp = f"postgresql+psycopg://etl:{PASSWORD}@127.0.0.1:{port}/erp"
    mapping = str(REPO / "mappings" / "sample_erp.yaml")

    result = project.run("sync", "-m", mapping, "--json", env={"ERP_DATABASE_URL": erp})

    reason = assert_stopped(result, f"127.0.0.1:{port}", "cannot connect")
    document = result.json()
    assert document["exit_code"] == 2
    [run] = document["runs"]  # no status-sync after the source failed
    assert (run["status"], run["fatal"], run["reason"]) == ("failed", reason, reason)
    assert_listed_failed(project, reason)
    shown = result.stdout + result.stderr + project.run("runs", "--json").stdout
    assert PASSWORD not in shown
    assert sandbox.state.invoices() == {}
