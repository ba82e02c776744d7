"""AppZen unreachable, as the operator sees it: ``appzen-etl sync`` stops with exit code 3 and one
line (what, which host, the last error, "nothing lost"), the run is recorded ``failed``, no
invoice is written off as failed, and the next sync once AppZen answers sends everything.

The server that accepts connections and never answers runs at the default settings (window 30 s,
read timeout 60 s) in real time; the closed port runs at a tuned window (its default-window twin
in virtual time is tests/load/test_sync_outage.py)."""

from __future__ import annotations

import csv
import socket
import time
from collections.abc import Iterator

import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import FLAT_MAPPING, Project, Result, invoice_row

KEYS = [f"OUT-{n}" for n in range(1, 6)]
NOTE = "nothing lost: the invoices stay pending; rerun when AppZen answers"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/dictionary-data-services"


def assert_one_line_outage(result: Result, port: int) -> None:
    assert result.code == 3, result
    assert "Traceback" not in result.stderr, result
    lines = [line for line in result.messages.splitlines() if line.strip()]
    assert len(lines) == 1, result  # and the run log: progress, run-end lines
    [line] = lines
    assert line.startswith(f"stopped: AppZen unreachable: no answer from 127.0.0.1:{port}"), line
    assert line.endswith(NOTE), line


def assert_nothing_failed_and_a_rerun_delivers(project: Project, sandbox: SandboxServer) -> None:
    runs = project.run("runs", "--json").json()["runs"]
    assert [run["status"] for run in runs] == ["failed"], runs
    assert runs[0]["counts"].get("failed_retries", 0) == 0
    report = project.run("report", "--format", "csv")
    assert report.code == 0, report
    rows = (project.root / report.stdout.strip()).read_text("utf-8-sig").splitlines()
    [row] = csv.DictReader(rows)
    assert row["run id"] == "1", rows
    assert row["message"] == "no failed rows", rows
    assert {v for k, v in row.items() if k not in {"run id", "message"}} == {""}, rows

    rerun = project.run("sync", "-m", str(FLAT_MAPPING), "--json")

    assert rerun.code == 0, rerun
    assert rerun.json()["runs"][0]["counts"]["created"] == len(KEYS)
    assert sorted(sandbox.state.invoices()) == KEYS


def test_a_server_that_never_answers_stops_the_sync_within_a_minute_at_the_defaults(
    project: Project, sandbox: SandboxServer, silent_server: int
) -> None:
    for name in ("APPZEN_READ_TIMEOUT", "APPZEN_RETRY_ATTEMPTS"):
        project.env.pop(name)  # the defaults: 60 s read timeout, 6 attempts, 30 s window
    project.write_invoices([invoice_row(key) for key in KEYS])
    started = time.monotonic()

    result = project.run(
        "sync", "-m", str(FLAT_MAPPING), env={"APPZEN_BASE_URL": url(silent_server)}
    )

    assert time.monotonic() - started < 60.0, result
    assert_one_line_outage(result, silent_server)
    assert "for 30 s (5 requests waited that long and are still waiting)" in result.stderr
    assert_nothing_failed_and_a_rerun_delivers(project, sandbox)


def test_a_closed_port_exits_3_with_the_outage_in_the_json(
    project: Project, sandbox: SandboxServer, closed_port: int
) -> None:
    project.write_invoices([invoice_row(key) for key in KEYS])
    env = {"APPZEN_BASE_URL": url(closed_port), "APPZEN_OUTAGE_WINDOW": "2"}

    result = project.run("sync", "-m", str(FLAT_MAPPING), "--json", env=env)

    assert_one_line_outage(result, closed_port)
    assert "for 2 s (last error: no answer from AppZen (ConnectError" in result.stderr
    document = result.json()
    assert document["exit_code"] == 3
    assert document["failed"] == 0
    [run] = document["runs"]
    assert (run["name"], run["status"], run["outage"]) == ("sync", "failed", True)
    assert run["counts"]["left_pending"] == len(KEYS)
    assert_nothing_failed_and_a_rerun_delivers(project, sandbox)


def test_a_closed_port_stops_the_sync_within_a_minute_at_the_defaults(
    project: Project, sandbox: SandboxServer, closed_port: int
) -> None:
    """The closed port's twin at the default settings (30 s window, 6 attempts), in real time."""
    for name in ("APPZEN_READ_TIMEOUT", "APPZEN_RETRY_ATTEMPTS"):
        project.env.pop(name)
    project.write_invoices([invoice_row(key) for key in KEYS])
    started = time.monotonic()

    result = project.run(
        "sync", "-m", str(FLAT_MAPPING), "--json", env={"APPZEN_BASE_URL": url(closed_port)}
    )

    assert time.monotonic() - started < 60.0, result
    assert_one_line_outage(result, closed_port)
    assert "for 30 s (last error: no answer from AppZen (ConnectError" in result.stderr
    assert (result.json()["exit_code"], result.json()["failed"]) == (3, 0)
    assert_nothing_failed_and_a_rerun_delivers(project, sandbox)
