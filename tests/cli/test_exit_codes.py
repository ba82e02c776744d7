"""Exit codes as automation sees them: 0 all good, 1 some rows failed, 2 a configuration or
credential error told in one clear line on stderr (never a traceback)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence

import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import FLAT_MAPPING, REPO, Project, Result, invoice_row

MAPPING = str(FLAT_MAPPING)

BAD_MAPPING = """\
name: broken
source:
  kind: csv
  path: samples/flat_ap_export.csv
invoice_key: invoice_no
colour: blue
header:
  invoice_number: invoice_no
invoice_lines:
  line_number: line_no
"""

MISSING_SOURCE = "samples/flat_ap_export.csv"


def _one_clear_line(result: Result, *needles: str) -> None:
    assert result.code == 2, result
    assert "Traceback" not in result.stderr, result
    first = result.messages.splitlines()[0]  # the run log (progress, run-end lines) aside
    assert first.startswith(("error:", "stopped:")), result
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in:\n{result}"


CASES: list[tuple[str, Sequence[str], Mapping[str, str] | None, tuple[str, ...]]] = [
    (
        "bad setting value",
        ("sync", "-m", MAPPING),
        {"APPZEN_RATE_LIMIT": "fast"},
        ("APPZEN_RATE_LIMIT", "valid number"),
    ),
    (
        "missing credentials off the sandbox",
        ("sync", "-m", MAPPING),
        {"APPZEN_BASE_URL": "https://api.appzen.example/dictionary-data-services"},
        ("APPZEN_API_KEY", "APPZEN_CUSTOMER_KEY", "must be set"),
    ),
    (
        "missing credentials for an AppZen on this machine that is not declared the sandbox",
        ("sync", "-m", MAPPING),
        {"APPZEN_SANDBOX": "false"},  # the project's APPZEN_BASE_URL: a sandbox on a free port
        ("APPZEN_API_KEY", "APPZEN_CUSTOMER_KEY", "must be set", "APPZEN_SANDBOX=true"),
    ),
    (
        "invalid mapping file",
        ("sync", "-m", "mappings/broken.yaml"),
        None,
        ("mappings/broken.yaml:6 colour: unknown key 'colour'",),
    ),
    (
        "missing source file",
        ("sync", "-m", "mappings/missing_source.yaml"),
        None,
        ("samples/gone.csv", "does not exist"),
    ),
    (
        "missing mapping file",
        ("sync", "-m", "mappings/gone.yaml"),
        None,
        ("mappings/gone.yaml", "no such mapping file"),
    ),
    (
        "missing query file",
        ("sync", "-m", "mappings/missing_query.yaml"),
        {"ERP_DATABASE_URL": "sqlite:///erp.db"},
        ("sql/gone.sql", "cannot read the query file"),
    ),
    (
        "missing connectors file",
        ("writeback", "--connectors", "mappings/gone.yaml", "--no-poll"),
        None,
        ("mappings/gone.yaml", "cannot read the connectors file"),
    ),
    (
        "missing outcomes file",
        ("writeback", "--outcomes", "exports/gone.csv", "--no-poll"),
        None,
        ("exports/gone.csv", "does not exist"),
    ),
    (
        "unreachable staging",
        ("runs",),
        {"STAGING_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"},
        ("staging database", "127.0.0.1", "STAGING_DATABASE_URL"),
    ),
    (
        "reversed backfill range",
        ("backfill", "-m", MAPPING, "--from", "2024-06-30", "--to", "2024-01-01"),
        None,
        ("--to 2024-01-01 is before --from 2024-06-30",),
    ),
    (
        "date range on a file source",
        ("backfill", "-m", MAPPING, "--from", "2024-01-01"),
        None,
        ("csv file, which has no date filter",),
    ),
    (
        "retry of a run that does not exist",
        ("retry-failed", "-m", MAPPING, "--run", "4242"),
        None,
        ("retry-failed: no run 4242 in staging",),
    ),
]


@pytest.fixture
def configured(project: Project) -> Project:
    project.write_invoices([invoice_row("OK-1"), invoice_row("OK-2")])
    (project.root / "mappings" / "broken.yaml").write_text(BAD_MAPPING)
    source = (project.root / FLAT_MAPPING).read_text()
    (project.root / "mappings" / "missing_source.yaml").write_text(
        source.replace(MISSING_SOURCE, "samples/gone.csv")
    )
    sql_mapping = (REPO / "mappings" / "sample_erp.yaml").read_text()
    (project.root / "mappings" / "missing_query.yaml").write_text(
        sql_mapping.replace("query: sql/sample_erp/extract.sql", "query: sql/gone.sql")
    )
    shutil.copy(REPO / "mappings" / "connectors.yaml", project.root / "mappings")
    return project


def test_configuration_errors_exit_2_with_one_clear_line(
    configured: Project, sandbox: SandboxServer
) -> None:
    results = configured.run_many(*((args, env) for _, args, env, _ in CASES))
    for (what, _, _, needles), result in zip(CASES, results, strict=True):
        try:
            _one_clear_line(result, *needles)
        except AssertionError as error:
            raise AssertionError(f"{what}: {error}") from None
    assert sandbox.state.response_counts() == {}
    broken = results[[case[0] for case in CASES].index("invalid mapping file")]
    following = broken.stderr.splitlines()[1:]  # every error of the file, each with its line
    assert any(line.startswith("mappings/broken.yaml:") for line in following), broken


def test_wrong_api_key_stops_the_run_with_exit_2(
    configured: Project, sandbox: SandboxServer
) -> None:
    result = configured.run(
        "sync", "-m", MAPPING, "--json", env={"APPZEN_API_KEY": "not-the-sandbox-key"}
    )
    _one_clear_line(result, "APPZEN_API_KEY", "401")
    assert " ERROR pipeline.run: sync run 1 (flat_csv) stopped: " in result.stderr, result
    document = result.json()
    assert document["exit_code"] == 2
    [run] = document["runs"]  # no status-sync after a fatal answer
    assert run["status"] == "failed"
    assert "401" in run["fatal"]
    assert sandbox.state.invoices() == {}
    assert set(sandbox.state.response_counts()) == {401}


def test_all_good_exits_0_then_unchanged_exits_0(
    configured: Project, sandbox: SandboxServer
) -> None:
    first = configured.run("sync", "-m", MAPPING)
    assert first.code == 0, first
    assert set(sandbox.state.invoices()) == {"OK-1", "OK-2"}
    again = configured.run("sync", "-m", MAPPING, "--json")
    assert again.code == 0, again
    counts = again.json()["runs"][0]["counts"]
    assert counts["unchanged"] == 2
    assert "created" not in counts
