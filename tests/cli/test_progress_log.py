"""Off a terminal (cron, a pipe), a run is readable from its log: INFO progress lines at a steady
interval (PROGRESS_INTERVAL) whose counts add up, one final line, and the run-end lines (the
counts, a WARNING naming the failed invoices and the report); -v adds a line per batch, -vv one
DEBUG line per AppZen request, never a key."""

from __future__ import annotations

import re

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import Project, invoice_row

PROGRESS = re.compile(
    r"INFO pipeline\.run: (?P<flow>\w+) run (?P<run>\d+) \(flat_csv\): extracted (?P<extracted>\d+)"
    r" · sent (?P<sent>\d+) · unchanged (?P<unchanged>\d+) · failed (?P<failed>\d+) · "
    r"[\d.]+ requests/s · \d+ s(?P<done> · done)?$"
)
INVOICES, BAD = 30, 3


def _invoices(project: Project) -> None:
    rows = [invoice_row(f"P-{n:02}") for n in range(INVOICES - BAD)]
    rows += [invoice_row(f"BAD-{n}", due_date="31.02.2024") for n in range(BAD)]
    project.write_invoices(rows)


def _progress(stderr: str) -> list[dict[str, int]]:
    lines = [PROGRESS.search(line) for line in stderr.splitlines()]
    return [
        {k: int(v) for k, v in m.groupdict().items() if k not in ("flow", "done")}
        | {"final": int(bool(m["done"]))}
        for m in lines
        if m is not None
    ]


def test_a_piped_run_logs_progress_at_the_interval_with_counts_that_add_up(
    project: Project, sandbox: SandboxServer
) -> None:
    _invoices(project)
    env = {"PROGRESS_INTERVAL": "0.1", "APPZEN_RATE_LIMIT": "30", "BATCH_SIZE": "5"}

    result = project.run("sync", "-m", "mappings/flat_csv.yaml", "--no-status-sync", env=env)

    assert result.code == 1, result  # rows failed
    lines = _progress(result.stderr)
    assert len(lines) >= 3, result  # ~1 s of sending at 30/s, a line every 0.1 s
    assert [line["final"] for line in lines] == [0] * (len(lines) - 1) + [1]
    for line in lines:
        assert line["sent"] + line["unchanged"] + line["failed"] <= line["extracted"] <= INVOICES
    final = lines[-1]
    assert (final["extracted"], final["sent"], final["failed"]) == (INVOICES, INVOICES - BAD, BAD)
    extracted = [line["extracted"] for line in lines]
    assert extracted == sorted(extracted)  # it moves forward, never back
    run = final["run"]
    assert (
        f"INFO pipeline.run: sync run {run} (flat_csv): succeeded with {BAD} failed invoices"
        in (result.stderr)
    )
    warning = next(line for line in result.stderr.splitlines() if " WARNING " in line)
    assert f"{BAD} invoices failed; amount at risk EUR 357.00" in warning
    assert str(result.reports(run)["html"]) in warning
    assert f"appzen-etl report --run {run}" in warning


def test_by_default_a_short_run_logs_its_final_line_and_status_sync_its_own(
    project: Project, sandbox: SandboxServer
) -> None:
    _invoices(project)

    result = project.run("sync", "-m", "mappings/flat_csv.yaml")

    lines = _progress(result.stderr)
    assert [line["final"] for line in lines] == [1], result  # the 30 s interval never came
    assert lines[0]["extracted"] == INVOICES
    pushed = [line for line in result.stderr.splitlines() if "status_sync run " in line]
    assert any(re.search(r"\(flat_csv\): sent \d+ · failed 0 · .* · done$", x) for x in pushed)
    assert any(": succeeded in " in line for line in pushed), result


def test_verbose_adds_batch_lines_and_very_verbose_request_lines_without_secrets(
    project: Project, sandbox: SandboxServer
) -> None:
    project.write_invoices([invoice_row(f"P-{n:02}") for n in range(6)])
    env = {"BATCH_SIZE": "2"}

    one = project.run("-v", "sync", "-m", "mappings/flat_csv.yaml", "--no-status-sync", env=env)
    project.write_invoices([invoice_row(f"Q-{n:02}") for n in range(4)])
    two = project.run("-vv", "sync", "-m", "mappings/flat_csv.yaml", "--no-status-sync", env=env)

    assert (one.code, two.code) == (0, 0), (one, two)
    assert len(re.findall(r"pipeline\.run: batch \d+: sync run ", one.stderr)) == 3
    assert "DEBUG" not in one.stderr
    requests = re.findall(
        r"DEBUG pipeline\.appzen\.client: AppZen POST /invoice: HTTP 20[01] ", two.stderr
    )
    assert len(requests) == 4, two
    assert "x-correlation-id" in two.stderr
    for secret in ("sandbox-api-key", "sandbox-customer-key"):
        assert secret not in two.stderr
