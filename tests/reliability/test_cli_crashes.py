"""``appzen-etl sync`` killed with SIGKILL at random moments and run again at once, at the default
settings (no shortened lease), 10 times: each rerun takes over the dead run's claims because its
process is gone, sends everything (never ``busy``, never ``partial``), and marks the dead run
``crashed``; ``appzen-etl runs`` never shows it ``running``. At the end AppZen holds exactly the
valid invoices and staging agrees with it.

The killed command is the CLI's own entry point in a process forked from a server that has
imported it (a fork, not a Python start-up, per kill); the reruns run it in this process."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.devkit.sample_erp import touch
from tests.reliability import crash_worker
from tests.reliability.checks import assert_converged, assert_no_unacknowledged_send
from tests.reliability.test_crashes import sandbox_count
from tests.reliability.world import MAPPING, World, poll, settle

pytestmark = pytest.mark.reliability

CYCLES = 10
SEED = 20_261_203


def environment(world: World, tmp_path: Path) -> dict[str, str]:
    """The operator's settings: the sandbox, the sample ERP, the world's staging; small batches
    so a kill lands mid-run; everything else (the lease included) at its default."""
    return {
        "APPZEN_BASE_URL": world.sandbox.base_url,
        "ERP_DATABASE_URL": world.erp_url,
        "STAGING_DATABASE_URL": world.settings.staging_database_url.get_secret_value(),
        "REPORTS_DIR": str(tmp_path / "reports"),
        "APPZEN_RATE_LIMIT": "400",
        "APPZEN_MAX_CONCURRENCY": "4",
        "BATCH_SIZE": "10",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    """``appzen-etl *args --json`` in this process: its exit code and JSON document."""
    result = CliRunner().invoke(app, [*args, "--json"], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def kill_mid_sync(world: World, env: dict[str, str], tmp_path: Path, count: int) -> bool:
    """Start ``appzen-etl sync``, SIGKILL it once the sandbox stored ``count`` more invoice
    versions (unless it ends first); whether it was killed."""
    target = sandbox_count(world.sandbox, "invoices") + count
    worker = crash_worker.start_command(["sync", "-m", str(MAPPING)], env, tmp_path)
    try:
        poll(
            lambda: sandbox_count(world.sandbox, "invoices") >= target or not worker.is_alive(),
            60,
            f"appzen-etl sync storing {count} invoices",
        )
    finally:
        worker.kill()
        worker.join(10)
    settle(world.sandbox)
    assert worker.exitcode in (-signal.SIGKILL, 0, 1), f"sync failed on its own: {worker.exitcode}"
    return worker.exitcode == -signal.SIGKILL


def test_appzen_etl_sync_killed_and_rerun_at_once_delivers_everything(
    world: World, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    env = environment(world, tmp_path)
    world.sandbox.state.configure(latency_ms=15.0)
    killed = 0
    for cycle in range(CYCLES):
        if cycle:
            touch(world.erp_url, count=30, seed=cycle)
        killed += kill_mid_sync(world, env, tmp_path, rng.randint(1, 25))
        assert_no_unacknowledged_send(world.store, world.sandbox)

        code, done = run(env, "sync", "-m", str(MAPPING))  # at once: no lease to wait out

        assert code in (0, 1), done  # 1: the ERP's dirty rows; never 4 (partial)
        sync = done["runs"][0]
        assert (sync["status"], sync["counts"].get("busy", 0)) == ("succeeded", 0), sync
        _, listed = run(env, "runs", "--limit", "100")
        statuses = [r["status"] for r in listed["runs"]]
        assert "running" not in statuses, listed
        assert statuses.count("crashed") <= killed
        assert (statuses.count("crashed") > 0) == (killed > 0)

    assert killed >= CYCLES // 2, killed
    assert_converged(world, world.expected())
