"""``appzen-etl sync`` stopped with SIGTERM (what ``kill``, a Prefect cancel, systemd and
Kubernetes send), at the default settings (no shortened lease): it stops taking work, lets the
requests already out finish and records them, frees its claims, writes its report, is recorded
``cancelled`` and exits 143. A rerun started at once sends the rest, each invoice exactly once
(AppZen holds one version of each), and staging agrees with AppZen."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.support import APPZEN_ETL, REPORT_LINE, RUN_LOG, clean_environment
from tests.reliability.checks import assert_converged, staged
from tests.reliability.test_cli_crashes import environment, run
from tests.reliability.test_crashes import sandbox_count
from tests.reliability.world import MAPPING, World, poll, settle

pytestmark = pytest.mark.reliability

STORED_BEFORE_TERM = 12
"""Invoices AppZen holds when SIGTERM is sent: past the first batch of 10, far from the 60."""


def test_sigterm_stops_the_sync_cleanly_and_a_rerun_sends_the_rest_exactly_once(
    world: World, tmp_path: Path
) -> None:
    env = environment(world, tmp_path)
    world.sandbox.state.configure(latency_ms=100.0)  # 4 in flight: ~40 invoices/s
    worker = subprocess.Popen(
        [str(APPZEN_ETL), "sync", "-m", str(MAPPING)],
        cwd=tmp_path,
        env=clean_environment(env | {"APPZEN_SANDBOX": "true"}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(
            lambda: (
                sandbox_count(world.sandbox, "invoices") >= STORED_BEFORE_TERM
                or worker.poll() is not None
            ),
            90,
            "appzen-etl sync storing its first invoices",
        )
        if worker.poll() is not None:
            raise AssertionError(f"the sync ended before SIGTERM: {worker.communicate()}")
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    stopped_in = time.monotonic() - started

    assert worker.returncode == 143, (worker.returncode, out, err)
    assert stopped_in < 15, f"took {stopped_in:.1f} s to stop"
    lines = [line for line in RUN_LOG.sub("", err).splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("stopped: cancelled: SIGTERM received"), err
    assert "nothing lost" in lines[0]
    assert {kind for _, kind, _ in REPORT_LINE.findall(out)} == {"csv", "html"}, out
    settle(world.sandbox)
    stored = world.sandbox.state.invoices()
    assert len(stored) < len(world.expected().valid), "the rest was left for the rerun"
    recorded = {key: r.uuid for key, r in staged(world.store).items() if r.uuid is not None}
    assert recorded == {key: invoice.uuid for key, invoice in stored.items()}, (
        "every request out when SIGTERM came finished and was recorded"
    )
    _, listed = run(env, "runs")
    [cancelled] = listed["runs"]
    assert cancelled["status"] == "cancelled", cancelled
    assert cancelled["reason"].startswith("cancelled: SIGTERM received"), cancelled
    held = {key: r.claimed_by for key, r in staged(world.store).items() if r.claimed_by}
    assert held == {}, "its claims were freed"

    code, done = run(env, "sync", "-m", str(MAPPING))  # at once: no lease to wait out

    assert code in (0, 1), done  # 1: the ERP's dirty rows
    sync = done["runs"][0]
    assert (sync["status"], sync["counts"].get("busy", 0)) == ("succeeded", 0), sync
    assert sync["counts"].get("unchanged", 0) == len(recorded)
    assert_converged(world, world.expected())
    versions = {key: invoice.versions for key, invoice in world.sandbox.state.invoices().items()}
    assert set(versions.values()) == {1}, f"sent more than once: {versions}"
