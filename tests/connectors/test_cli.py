"""``appzen-etl writeback``: one recorded run, its JSON summary, exit code 1 for failed rows and
2 for an invalid connectors file (one line, no traceback)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.crm import CrmState
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.connectors.conftest import sync_merchant, write_connectors


@pytest.fixture
def env(wb_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``wb_settings`` as the environment the command reads."""
    values = {
        "APPZEN_BASE_URL": wb_settings.appzen_base_url,
        "MERCHANT_BASE_URL": str(wb_settings.merchant_base_url),
        "CRM_BASE_URL": str(wb_settings.crm_base_url),
        "STAGING_DATABASE_URL": wb_settings.staging_database_url.get_secret_value(),
        "REPORTS_DIR": str(wb_settings.reports_dir),
        "APPZEN_RETRY_ATTEMPTS": "2",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return wb_settings


def test_writeback_prints_its_summary_and_exits_1_on_failed_rows(
    sandbox: SandboxServer,
    merchant: MerchantState,
    crm: CrmState,
    env: Settings,
    store: StagingStore,
    tmp_path: Path,
) -> None:
    asyncio.run(sync_merchant(env, store))  # the command runs its own event loop
    crm.add_invoice("880100", "POSTED")
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text("invoice_id,state\n880100,REJECTED\n", "utf-8")
    connectors = write_connectors(tmp_path)
    args = ["writeback", "-c", str(connectors), "--outcomes", str(outcomes), "--no-poll", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    run = document["runs"][0]
    assert (run["flow"], run["status"], run["failed"]) == ("writeback", "succeeded", 1)
    assert run["counts"]["crm_not_draft"] == 1
    assert run["counts"]["merchant_noted"] == 9
    assert Path(run["reports"]["csv"]).is_file()


def test_an_invalid_connectors_file_exits_2_with_one_line(env: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "connectors.yaml"
    bad.write_text("crm:\n  base_url: https://crm.example.com\n", "utf-8")
    result = CliRunner().invoke(app, ["writeback", "-c", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:1 crm.mappings: missing key 'mappings'" in result.output
    assert "Traceback" not in result.output
