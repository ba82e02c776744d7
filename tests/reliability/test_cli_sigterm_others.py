"""``appzen-etl status-sync`` and ``appzen-etl retry-failed`` stopped with SIGTERM mid-run, at
the default settings (no shortened lease), stop as ``sync`` does
(tests/reliability/test_cli_sigterm.py): no request starts after it, the requests already out
finish and are recorded, nothing is left claimed, locked or in doubt, the run is recorded
``cancelled``, and the command exits 143 with one ``stopped:`` line. A rerun started at once
does the rest, and AppZen received each status push and each invoice exactly once."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cli.support import APPZEN_ETL, RUN_LOG, clean_environment
from tests.reliability.checks import staged
from tests.reliability.test_cli_crashes import environment, run
from tests.reliability.test_crashes import sandbox_count
from tests.reliability.world import MAPPING, World, poll, settle

pytestmark = pytest.mark.reliability

DONE_BEFORE_TERM = 12
"""Pushes (or invoices) AppZen holds when SIGTERM is sent: under a third of the ~50."""
LATENCY_MS = 300.0
"""4 requests in flight: ~13 answers/s, so SIGTERM lands with most of the work left."""


def terminate_mid_run(
    world: World, env: dict[str, str], cwd: Path, args: list[str], what: str
) -> str:
    """Run ``appzen-etl *args``, SIGTERM it once the sandbox stored :data:`DONE_BEFORE_TERM`
    more ``what``; assert exit 143 and its one ``stopped:`` line, which is returned."""
    target = sandbox_count(world.sandbox, what) + DONE_BEFORE_TERM
    world.sandbox.state.configure(latency_ms=LATENCY_MS)
    command = subprocess.Popen(
        [str(APPZEN_ETL), *args, "-m", str(MAPPING)],
        cwd=cwd,
        env=clean_environment(env | {"APPZEN_SANDBOX": "true"}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(
            lambda: sandbox_count(world.sandbox, what) >= target or command.poll() is not None,
            90,
            f"appzen-etl {args[0]} storing its first {what}",
        )
        if command.poll() is not None:
            raise AssertionError(f"{args[0]} ended before SIGTERM: {command.communicate()}")
        command.send_signal(signal.SIGTERM)
        out, err = command.communicate(timeout=60)
    finally:
        command.kill()
    settle(world.sandbox)
    world.sandbox.state.configure(latency_ms=0.0)
    assert command.returncode == 143, (command.returncode, out, err)
    lines = [line for line in RUN_LOG.sub("", err).splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("stopped: cancelled: SIGTERM received"), err
    assert "nothing lost" in lines[0], lines[0]
    return lines[0]


def newest_run(env: dict[str, str]) -> dict[str, Any]:
    _, listed = run(env, "runs")
    newest: dict[str, Any] = listed["runs"][0]
    return newest


def test_sigterm_stops_status_sync_cleanly_and_a_rerun_pushes_each_status_once(
    world: World, tmp_path: Path
) -> None:
    env = environment(world, tmp_path)
    code, _ = run(env, "sync", "-m", str(MAPPING), "--no-status-sync")
    assert code in (0, 1)  # 1: the ERP's dirty rows
    assert sandbox_count(world.sandbox, "pushes") == 0

    terminate_mid_run(world, env, tmp_path, ["status-sync"], "pushes")

    pushed_before = Counter(push.invoice_id for push in world.sandbox.state.pushes())
    cancelled = newest_run(env)
    assert (cancelled["flow"], cancelled["status"]) == ("status_sync", "cancelled"), cancelled
    assert cancelled["reason"].startswith("cancelled: SIGTERM received"), cancelled
    assert cancelled["counts"].get("failed_status_sync", 0) == 0, cancelled
    in_doubt = {k: r.push_in_doubt for k, r in staged(world.store).items() if r.push_in_doubt}
    assert in_doubt == {}, "every push out at SIGTERM was answered and recorded; none in doubt"

    code, done = run(env, "status-sync", "-m", str(MAPPING))  # at once: no lock to wait out

    assert code == 0, done
    [again] = done["runs"]
    assert again["status"] == "succeeded", again
    assert again["counts"].get("repushed_after_crash", 0) == 0, again
    pushes = Counter(push.invoice_id for push in world.sandbox.state.pushes())
    assert set(pushes.values()) == {1}, f"a status pushed twice: {pushes}"
    assert again["counts"]["pushed"] + again["counts"].get("pushed_error", 0) == (
        len(pushes) - len(pushed_before)
    ), again
    assert len(pushed_before) < len(pushes), "SIGTERM left statuses for the rerun"


def test_sigterm_stops_retry_failed_cleanly_and_a_rerun_sends_the_rest_once(
    world: World, tmp_path: Path
) -> None:
    env = environment(world, tmp_path)
    valid = world.expected().valid
    suppliers = sorted({mapped.invoice.supplier_id for mapped in valid.values()})
    world.sandbox.state.configure(unknown_suppliers=suppliers)  # AppZen refuses every invoice
    code, first = run(env, "sync", "-m", str(MAPPING), "--no-status-sync")
    assert code == 1, first
    assert world.sandbox.state.invoices() == {}
    world.sandbox.state.configure(unknown_suppliers=[])  # fixed on AppZen's side

    terminate_mid_run(world, env, tmp_path, ["retry-failed"], "invoices")

    stored = world.sandbox.state.invoices()
    assert 0 < len(stored) < len(valid), "SIGTERM left invoices for the rerun"
    cancelled = newest_run(env)
    assert (cancelled["flow"], cancelled["status"]) == ("retry_failed", "cancelled"), cancelled
    assert cancelled["reason"].startswith("cancelled: SIGTERM received"), cancelled
    records = staged(world.store)
    assert {k: r.claimed_by for k, r in records.items() if r.claimed_by} == {}, "claims freed"
    recorded = {k: r.uuid for k, r in records.items() if r.uuid is not None}
    assert recorded == {k: invoice.uuid for k, invoice in stored.items()}, (
        "every request out when SIGTERM came finished and was recorded"
    )

    code, done = run(env, "retry-failed", "-m", str(MAPPING))  # at once: no lease to wait out

    assert code in (0, 1), done  # 1: the ERP's dirty rows fail again
    [again] = done["runs"]
    assert (again["status"], again["counts"].get("busy", 0)) == ("succeeded", 0), again
    invoices = world.sandbox.state.invoices()
    assert set(invoices) == set(valid)
    assert {invoice.versions for invoice in invoices.values()} == {1}, "each invoice sent once"
