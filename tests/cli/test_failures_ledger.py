"""``appzen-etl failures list`` and ``failures dismiss``: the ledger as an operator reads and
closes it, one entry per invoice, with who dismissed it and why."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import FLAT_MAPPING, Project, Result, invoice_row

MAPPING = str(FLAT_MAPPING)


@dataclass(frozen=True)
class Steps:
    """Each command's result by name."""

    results: dict[str, Result]


@pytest.fixture(scope="module")
def steps(sandbox_server: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Steps:
    sandbox_server.state.reset()
    sandbox_server.state.configure(unknown_suppliers=["V-UNKNOWN"])
    project = Project.create(tmp_path_factory.mktemp("ledger"), sandbox_server.base_url)
    project.write_invoices(
        [
            invoice_row("OK-1"),
            invoice_row("MAP-1", invoice_date="31.02.2024"),
            invoice_row("REJ-1", supplier_no="V-UNKNOWN", supplier_name="Unknown GmbH"),
        ]
    )
    sequence = [
        ("sync", ("sync", "-m", MAPPING, "--no-status-sync")),
        ("list", ("failures", "list", "--json")),
        ("table", ("failures", "list", "-m", MAPPING)),
        ("unknown", ("failures", "dismiss", "NO-SUCH", "MAP-1", "--reason", "typo")),
        ("blank reason", ("failures", "dismiss", "MAP-1", "--reason", "  ")),
        ("dismiss", ("failures", "dismiss", "MAP-1", "--reason", "duplicate", "--by", "ap1")),
        ("again", ("failures", "dismiss", "MAP-1", "--reason", "duplicate")),
        ("after", ("failures", "list", "--json")),
        ("all", ("failures", "list", "--all", "--json")),
    ]
    try:
        return Steps({name: project.run(*args) for name, args in sequence})
    finally:
        sandbox_server.state.reset()


def test_list_shows_one_entry_per_failed_invoice_with_its_facts(steps: Steps) -> None:
    assert steps.results["sync"].code == 1, steps.results["sync"]
    listed = steps.results["list"]
    assert listed.code == 0, listed
    entries = {entry["invoice_id"]: entry for entry in listed.json()["failures"]}
    assert set(entries) == {"MAP-1", "REJ-1"}
    rejected = entries["REJ-1"]
    assert (rejected["stage"], rejected["state"], rejected["runs_seen"]) == ("appzen", "open", 1)
    assert (rejected["supplier_id"], rejected["supplier_name"]) == ("V-UNKNOWN", "Unknown GmbH")
    assert (rejected["total_amount"], rejected["currency"]) == ("119.00", "EUR")
    assert rejected["invoice_date"] == "2024-09-04"
    assert "not a supplier" in rejected["reasons"][0]["message"]
    mapped = entries["MAP-1"]
    assert (mapped["stage"], mapped["invoice_date"]) == ("mapping", None)
    assert (mapped["invoice_number"], mapped["total_amount"]) == ("MAP-1", "119.00")
    table = steps.results["table"]
    assert table.code == 0, table
    assert "2 invoices not in AppZen" in table.stdout
    assert "Unknown GmbH" in table.stdout


def test_dismiss_is_all_or_nothing_and_needs_a_reason(steps: Steps) -> None:
    unknown = steps.results["unknown"]
    assert unknown.code == 2, unknown
    assert "NO-SUCH: no entry in the ledger" in unknown.stderr
    assert "nothing dismissed" in unknown.stderr
    assert steps.results["blank reason"].code == 2
    again = steps.results["again"]
    assert again.code == 2, again
    assert "MAP-1: dismissed" in again.stderr


def test_a_dismissed_entry_leaves_the_list_and_keeps_who_and_why(steps: Steps) -> None:
    dismissed = steps.results["dismiss"]
    assert dismissed.code == 0, dismissed
    assert "dismissed MAP-1 (flat_csv) by ap1: duplicate" in dismissed.stdout
    after = {entry["invoice_id"] for entry in steps.results["after"].json()["failures"]}
    assert after == {"REJ-1"}
    every = {entry["invoice_id"]: entry for entry in steps.results["all"].json()["failures"]}
    entry = every["MAP-1"]
    assert (entry["state"], entry["dismissed_by"], entry["dismissed_reason"]) == (
        "dismissed",
        "ap1",
        "duplicate",
    )
    assert entry["closed_at"]
