"""Not green when work was left: a sync that skipped invoices another *live* run holds ends
``partial``, names the holder (run id, host, pid) and exits 4; once the holder is gone the next
run sends them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from pipeline.staging import StageItem, StagingStore
from pipeline.staging.owners import Owner
from tests.load.sync_helpers import MAPPING, NAME, expected


def environment(settings: Settings, tmp_path: Path) -> dict[str, str]:
    return {
        "APPZEN_BASE_URL": settings.appzen_base_url,
        "ERP_DATABASE_URL": settings.erp_database_url.get_secret_value(),  # type: ignore[union-attr]
        "STAGING_DATABASE_URL": settings.staging_database_url.get_secret_value(),
        "REPORTS_DIR": str(tmp_path / "reports"),
    }


def test_a_sync_skipping_a_live_runs_invoices_is_partial_names_the_holder_and_exits_4(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, tmp_path: Path
) -> None:
    valid = expected(settings)
    holder = Owner.of_this_process("holder")
    held_run = store.start_run("sync", NAME, {}, False, owner=holder)
    held = sorted(valid)[:5]
    items = [StageItem(key, "in-flight") for key in held]
    store.claim_batch(NAME, items, owner=holder.token, lease_seconds=60, run_id=held_run)
    env = environment(settings, tmp_path)

    result = CliRunner().invoke(app, ["sync", "-m", str(MAPPING), "--json"], env=env)

    assert result.exit_code == 4, result.output
    sync = json.loads(result.stdout)["runs"][0]
    who = f"run {held_run} (host {holder.host}, pid {os.getpid()})"
    reason = f"5 invoices skipped: held by {who}, still running; the next run sends them"
    assert (sync["status"], sync["counts"]["busy"], sync["reason"]) == ("partial", 5, reason)
    assert f"partial: run {sync['run_id']}: {reason}" in result.stderr
    assert set(sandbox.state.invoices()) == set(valid) - set(held)
    run = store.get_run(sync["run_id"])
    assert run is not None
    assert (run.status, run.reason) == ("partial", reason)

    store.release_claims(holder.token)  # the holder ends
    store.finish_run(held_run, status="interrupted", counts={})
    rerun = CliRunner().invoke(app, ["sync", "-m", str(MAPPING), "--json"], env=env)

    assert rerun.exit_code in (0, 1), rerun.output  # 1: the ERP's dirty rows, if re-read
    assert json.loads(rerun.stdout)["runs"][0]["status"] == "succeeded"
    assert set(sandbox.state.invoices()) == set(valid)
