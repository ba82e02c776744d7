"""Reconciliation: sent invoices read back from the sandbox (get-details) and compared field by
field with what staging says was sent; the ``appzen-etl verify`` command end to end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.wire import details_view
from pipeline.reconcile import ABSENT, compare, flatten_details, render_value, verify
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.status.status_helpers import MAPPING, MAPPING_NAME, open_store, sent_ids, sync

CLI = Path(sys.executable).with_name("appzen-etl")


@pytest.fixture
def store(settings: Settings) -> Iterator[StagingStore]:
    with open_store(settings) as opened:
        yield opened


# --- comparing, without AppZen -----------------------------------------------------------------
FLAT = {
    "address_type": "REMIT_TO",
    "address_line1": "Damrak 70",
    "city": "Amsterdam",
    "zip": "1012 AB",
    "country": "NL",
    "site_id": "913838",
}


def test_flatten_details_undoes_the_get_details_nesting() -> None:
    sent = {"invoice_id": "A", "supplier_address": FLAT, "billing_address": {**FLAT, "zip": "1"}}
    nested = details_view(sent)
    assert nested["supplier_address"]["address"]["address"]["city"] == "Amsterdam"

    assert flatten_details(nested) == sent


def test_flatten_details_keeps_a_shape_it_does_not_know() -> None:
    odd = {"supplier_address": {"address_type": "OFFICE", "address": "one line"}}
    assert flatten_details(odd) == odd
    assert flatten_details({"shipping_address": None}) == {"shipping_address": None}


@pytest.mark.parametrize(
    ("sent", "appzen"),
    [
        pytest.param(Decimal("200.00"), Decimal("200.0"), id="scale"),
        pytest.param(Decimal("200.00"), 200, id="integer"),
        pytest.param(None, ABSENT, id="null-vs-absent"),
        pytest.param({"a": 1}, {"a": 1, "added_by_appzen": "x"}, id="extra-key"),
        pytest.param("GB123", ["GB123"], id="vat-number-as-list"),
    ],
)
def test_equal_values_are_no_drift(sent: object, appzen: object) -> None:
    path = "vat_registration_numbers"
    assert list(compare({path: sent}, {} if appzen is ABSENT else {path: appzen})) == []


@pytest.mark.parametrize(
    ("sent", "appzen"),
    [
        pytest.param(Decimal("1.10"), Decimal("1.1000000001"), id="tiny-amount-change"),
        pytest.param(True, 1, id="bool-vs-int"),
        pytest.param("10", 10, id="text-vs-number"),
        pytest.param("X", ABSENT, id="absent-in-appzen"),
        pytest.param({"amount": 1}, "1", id="object-vs-text"),
        pytest.param("GB1", ["GB1", "GB2"], id="vat-list-of-two"),
    ],
)
def test_different_values_are_drift(sent: object, appzen: object) -> None:
    got = {} if appzen is ABSENT else {"vat_registration_numbers": appzen}
    assert list(compare({"vat_registration_numbers": sent}, got)) == [
        ("vat_registration_numbers", sent, appzen)
    ]


def test_compare_names_nested_paths_and_lines_on_either_side() -> None:
    sent = {"invoice_lines": [{"quantity": 2, "unit_price": {"amount": Decimal("1.50")}}]}
    appzen = {
        "invoice_lines": [
            {"quantity": Decimal("2.5"), "unit_price": {"amount": Decimal("1.5")}},
            {"quantity": 1},
        ]
    }
    assert list(compare(sent, appzen)) == [
        ("invoice_lines.0.quantity", 2, Decimal("2.5")),
        ("invoice_lines.1", ABSENT, {"quantity": 1}),
    ]
    assert list(compare(appzen, sent))[-1] == ("invoice_lines.1", {"quantity": 1}, ABSENT)


def test_values_render_as_exact_json() -> None:
    assert render_value(Decimal("10.50")) == "10.50"
    assert render_value("10.50") == '"10.50"'
    assert render_value({"a": [Decimal("0.10"), None, True]}) == '{"a":[0.10,null,true]}'
    assert render_value(ABSENT) == "(absent)"


# --- against the sandbox -----------------------------------------------------------------------
async def test_no_drift_right_after_a_sync(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    sent = sent_ids(store)

    report = await verify(settings, store, MAPPING_NAME, sample=1000)

    assert (report.sampled, report.checked) == (len(sent), len(sent))
    assert report.drifts == []
    assert not report.drifted
    assert report.fatal is None


async def test_drift_introduced_in_appzen_is_found_field_by_field(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    key = sorted(sent_ids(store))[2]
    sent = sandbox.state.invoices()[key].payload
    uuid = sandbox.state.invoices()[key].uuid
    sandbox.state.mutate(key, "supplier_name", "X")
    sandbox.state.mutate(key, "total_amount.amount", sent["total_amount"]["amount"] + 1)
    sandbox.state.mutate(key, "invoice_lines.0.unit_price.amount", Decimal("0.01"))
    sandbox.state.mutate(key, "supplier_address.city", "Elsewhere")
    sandbox.state.mutate(key, "supplier_address.zip", delete=True)

    report = await verify(settings, store, MAPPING_NAME, sample=1000)

    found = {d.path: (d.invoice_id, d.uuid, d.sent, d.appzen, d.kind) for d in report.drifts}
    amount = sent["total_amount"]["amount"]
    assert found == {
        "supplier_name": (key, uuid, sent["supplier_name"], "X", "differs"),
        "total_amount.amount": (key, uuid, amount, amount + 1, "differs"),
        "invoice_lines.0.unit_price.amount": (
            key,
            uuid,
            sent["invoice_lines"][0]["unit_price"]["amount"],
            Decimal("0.01"),
            "differs",
        ),
        "supplier_address.city": (
            key,
            uuid,
            sent["supplier_address"]["city"],
            "Elsewhere",
            "differs",
        ),
        "supplier_address.zip": (key, uuid, sent["supplier_address"]["zip"], ABSENT, "differs"),
    }
    assert isinstance(found["total_amount.amount"][3], Decimal)
    assert report.drifted


async def test_an_invoice_appzen_forgot_is_reported_missing(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    key = sorted(sent_ids(store))[0]
    uuid = sandbox.state.forget(key).uuid

    report = await verify(settings, store, MAPPING_NAME, sample=1000)

    [missing] = report.drifts
    assert (missing.invoice_id, missing.uuid, missing.kind, missing.path) == (
        key,
        uuid,
        "missing",
        "",
    )
    assert missing.message is not None
    assert "HTTP 404" in missing.message
    assert report.checked == report.sampled - 1
    assert report.count("missing") == 1
    staged = store.get_invoice(MAPPING_NAME, key)
    assert staged is not None
    assert staged.state == "sent", "verify only reads: staging is left as it was"


async def test_only_the_sample_is_read_and_a_read_never_writes(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    await sync(settings, store)
    before = sandbox.state.response_counts()
    stored = sandbox.state.invoices()

    report = await verify(settings, store, MAPPING_NAME, sample=5)

    after = sandbox.state.response_counts()
    assert (report.sampled, report.checked) == (5, 5)
    assert after[200] - before.get(200, 0) == 5
    assert sandbox.state.invoices() == stored
    with pytest.raises(ValueError, match="sample=0 must be at least 1"):
        await verify(settings, store, MAPPING_NAME, sample=0)


# --- the command ---------------------------------------------------------------------------------
def cli_env(settings: Settings) -> dict[str, str]:
    """The environment that points ``appzen-etl`` at this test's sandbox, ERP and staging."""
    assert settings.erp_database_url is not None
    return {
        "APPZEN_BASE_URL": settings.appzen_base_url,
        "ERP_DATABASE_URL": settings.erp_database_url.get_secret_value(),
        "STAGING_DATABASE_URL": settings.staging_database_url.get_secret_value(),
        "REPORTS_DIR": str(settings.reports_dir),
        "APPZEN_RATE_LIMIT": str(settings.appzen_rate_limit),  # reads are paced like posts
        "COLUMNS": "250",
    }


@pytest.mark.slow  # the CLI in a subprocess
def test_the_verify_command_exits_0_without_drift_and_1_with_it(
    settings: Settings, sandbox: SandboxServer, store: StagingStore, tmp_path: Path
) -> None:
    asyncio.run(sync(settings, store))
    sent = sent_ids(store)
    key = sorted(sent)[3]
    verify_args = ["verify", "--mapping", str(MAPPING), "--sample", "100"]
    # The clean run in process (seconds cheaper), the drifted one as the installed console script.
    clean = CliRunner().invoke(app, verify_args, env=cli_env(settings))
    sandbox.state.mutate(key, "total_amount.amount", Decimal("12345.60"))
    assert CLI.exists(), f"{CLI} missing: run `make install`"
    drifted = subprocess.run(
        [str(CLI), *verify_args, "--json"],
        cwd=tmp_path,
        env={**os.environ, **cli_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert clean.exit_code == 0, clean.output
    assert "deprecated get-details endpoint" in clean.stderr
    assert f"{len(sent)} of {len(sent)} read back · 0 fields differ" in clean.stdout
    assert drifted.returncode == 1, drifted.stderr
    assert "deprecated get-details endpoint" in drifted.stderr
    document: dict[str, Any] = json.loads(drifted.stdout, parse_float=Decimal)
    assert (document["differs"], document["missing"], document["mapping"]) == (1, 0, MAPPING_NAME)
    [drift] = document["drifts"]
    assert (drift["invoice_id"], drift["path"], drift["appzen"]) == (
        key,
        "total_amount.amount",
        Decimal("12345.60"),
    )
    assert str(drift["appzen"]) == "12345.60", "amounts keep their scale in --json"
    staged = store.get_invoice(MAPPING_NAME, key)
    assert staged is not None
    assert staged.acked_payload is not None
    acked = json.loads(staged.acked_payload, parse_float=Decimal)
    assert drift["sent"] == acked["total_amount"]["amount"]


def test_the_verify_table_shows_each_drift_and_exits_1(
    settings: Settings, sandbox: SandboxServer, store: StagingStore
) -> None:
    asyncio.run(sync(settings, store))
    key = sorted(sent_ids(store))[0]
    sandbox.state.mutate(key, "supplier_name", "[bold]X[/bold]")

    result = CliRunner().invoke(
        app, ["verify", "-m", str(MAPPING), "-n", "100"], env=cli_env(settings)
    )

    assert result.exit_code == 1, result.output
    assert "1 fields differ" in result.stdout
    assert "supplier_name" in result.stdout
    assert '"[bold]X[/bold]"' in result.stdout, "values are shown as data, never as markup"
