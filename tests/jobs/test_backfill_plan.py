"""``appzen-etl backfill --plan``: the invoices in range, the requests they need, the AppZen budget
per day and the days and ETA that makes, without sending or recording anything."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import MAPPING, expected, options, run_sync, tuned


def env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that points ``appzen-etl`` at this test's sandbox, ERP and staging."""
    assert settings.erp_database_url is not None
    return {
        "APPZEN_BASE_URL": settings.appzen_base_url,
        "ERP_DATABASE_URL": settings.erp_database_url.get_secret_value(),
        "STAGING_DATABASE_URL": settings.staging_database_url.get_secret_value(),
        "REPORTS_DIR": str(settings.reports_dir),
        "COLUMNS": "250",
        **extra,
    }


def plan(settings: Settings, *extra: str, **variables: str) -> dict[str, Any]:
    args = ["backfill", "-m", str(MAPPING), "--from", "2024-01-01", "--to", "2025-01-31"]
    result = CliRunner().invoke(app, [*args, "--plan", *extra], env=env(settings, **variables))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in extra else {"text": result.stdout}


def test_the_plan_counts_the_range_and_the_days_and_sends_nothing(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    budget = {"APPZEN_DAILY_BUDGET": "20", "APPZEN_BUDGET_RESERVE_NIGHTLY": "5"}

    found = plan(settings, "--json", **budget)

    assert sandbox.state.response_counts() == {}  # no request
    assert store.list_runs() == []  # nothing recorded
    assert found["invoices"] == found["to_send"] + found["refused"]
    assert found["to_send"] == len(valid)
    assert found["unchanged"] == 0
    assert found["per_day"] == 15  # 20 less the nightly's 5
    assert found["left_today"] == 15
    assert found["days"] == -(-len(valid) // 15)
    assert isinstance(found["eta"], str)

    text = str(plan(settings, **budget)["text"])
    assert "(nothing was sent)" in text
    assert f"requests needed        {len(valid)} (new or changed" in text
    assert "budget per day         15 requests" in text
    assert f"days needed            {found['days']} AppZen day(s) (UTC)" in text


def test_what_was_already_delivered_needs_no_request(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    run_sync(options(incremental=False), tuned(settings), store)
    sent = sum(sandbox.state.response_counts().values())

    found = plan(settings, "--json")

    assert sum(sandbox.state.response_counts().values()) == sent
    assert found["to_send"] == 0
    assert found["unchanged"] == len(expected(settings))
    assert found["days"] == 1
    assert found["per_day"] == 300_000  # the default budget, nothing reserved
