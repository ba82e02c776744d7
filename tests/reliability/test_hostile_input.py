"""Hostile input, end to end through ``appzen-etl sync`` and ``appzen-etl mapping check``: every
case of hostile_cases.py gives exactly the message the table names (exit 2 and one clear error,
or exit 1 and the failed-row report), never a traceback, never runs anything, and leaves staging
consistent: no run left ``running``, nothing recorded as sent that AppZen did not acknowledge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.reliability.checks import STATES
from tests.reliability.hostile_cases import (
    CSV_CASES,
    MAPPING_CASES,
    SETTING_CASES,
    VALUE_CASES,
    Case,
)
from tests.reliability.operator import EXPORT, Outcome, Project

pytestmark = pytest.mark.reliability

CASES = CSV_CASES | VALUE_CASES | SETTING_CASES | MAPPING_CASES
MAX_OUTPUT_CHARS = 20_000
"""A command's output stays short whatever the input (a 10 MB cell is never echoed)."""


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 50
    assert all(case.code in (0, 1, 2) for case in CASES.values())


@pytest.mark.parametrize("name", CASES)
def test_hostile_input_gives_exactly_the_expected_answer(
    name: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    case = CASES[name]
    project = Project.create(tmp_path / "project", sandbox.base_url)
    for relative, content in case.files.items():
        project.write(relative, content)

    outcome = project.run(*case.args, env=case.env)

    assert_no_traceback(outcome)
    assert outcome.code == case.code, outcome
    expected = case.error(project.root) if callable(case.error) else case.error
    assert outcome.stderr == (expected or ""), outcome
    assert_reported(project, case)
    assert_received(sandbox, case)
    assert_staging_consistent(project, sandbox)
    assert not (project.root / "PWNED").exists(), "a mapping file ran a command"


def assert_no_traceback(outcome: Outcome) -> None:
    """The user sees messages, never a Python traceback (nor an escaped exception)."""
    assert outcome.crashed is None, f"{outcome.crashed!r}\n{outcome}"
    assert "Traceback" not in outcome.stdout + outcome.stderr, outcome
    assert len(outcome.stdout) + len(outcome.stderr) < MAX_OUTPUT_CHARS, outcome.stderr[:500]


def assert_reported(project: Project, case: Case) -> None:
    """The failed-row report holds each expected row; no other invoice failed."""
    rows = project.report_rows()
    assert {r["source key"] for r in rows} == {f.key for f in case.failed}, rows
    found = {(r["source key"], r["source location"], r["rule"], r["message"]) for r in rows}
    for failed in case.failed:
        wanted = (failed.key, f"{EXPORT}:{failed.row}", failed.rule, failed.message)
        assert wanted in found, f"{wanted} not in the report:\n{sorted(found)}"


def assert_received(sandbox: SandboxServer, case: Case) -> None:
    """AppZen holds exactly the expected invoices, with the expected values."""
    stored = sandbox.state.invoices()
    assert set(stored) == set(case.sent), sorted(stored)
    for key, fields in case.sent.items():
        for path, value in fields.items():
            assert dig(stored[key].payload, path) == value, (key, path)


def dig(payload: Any, path: str) -> Any:
    """The value at a dotted path (``invoice_lines.0.line_description``)."""
    for part in path.split("."):
        payload = payload[int(part)] if isinstance(payload, list) else payload[part]
    return payload


def assert_staging_consistent(project: Project, sandbox: SandboxServer) -> None:
    """No run left running; an invoice is sent exactly when AppZen acknowledged it."""
    if not (project.root / "staging.db").exists():
        return
    stored = sandbox.state.invoices()
    with project.store() as store:
        runs = store.list_runs(1000)
        assert all(run.status != "running" for run in runs), runs
        for state in STATES:
            for record in store.invoices_in_state("flat_csv", state, 10_000):
                if record.uuid is None:
                    assert record.state != "sent", record
                else:
                    assert stored[record.invoice_id].uuid == record.uuid, record
