"""kill -9 at random moments: a worker process running the nightly round (sync, then
status-sync) against a faulty sandbox is killed when the sandbox has received a seeded number of
invoices or status pushes, sometimes a second worker too; reruns started at once, with the
default lease, then finish the work (taking over the dead runs' claims because their process is
gone, and marking those runs crashed). After every cycle AppZen, staging, the ERP and the
failed-row reports agree, and the repeats AppZen received lie between the resends proved (a create
answered UPDATED) and the sends the dead runs left in doubt."""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

import pytest

from pipeline.devkit.sample_erp import touch
from pipeline.devkit.sandbox import SandboxServer
from tests.reliability import crash_worker
from tests.reliability.checks import (
    assert_all,
    assert_no_unacknowledged_send,
    push_tally,
    staged,
)
from tests.reliability.world import World, poll, settle

pytestmark = pytest.mark.reliability

CYCLES = 10
SEED = 20_240_917
FAULTS = {"fail_rate": 0.03, "drop_rate": 0.02, "latency_ms": 4.0}
"""Faults AppZen never acts on (no request is stored and then answered wrongly), so every
repeated status push comes from a kill, and the count of them can be checked exactly."""


@dataclass(frozen=True, slots=True)
class Kill:
    """When a worker was to be killed (after ``count`` more stored ``what``) and whether it was
    still running then."""

    what: str
    count: int
    killed: bool


def sandbox_count(sandbox: SandboxServer, what: str) -> int:
    """Invoice versions or status pushes the sandbox has stored so far."""
    if what == "pushes":
        return len(sandbox.state.pushes())
    return sum(invoice.versions for invoice in sandbox.state.invoices().values())


def kill_after(worker: BaseProcess, sandbox: SandboxServer, what: str, count: int) -> Kill:
    """SIGKILL ``worker`` once the sandbox has stored ``count`` more ``what`` (or let it end if
    it finishes first), then wait for the sandbox to finish the requests it admitted."""
    target = sandbox_count(sandbox, what) + count
    try:
        poll(
            lambda: sandbox_count(sandbox, what) >= target or not worker.is_alive(),
            60,
            f"the worker storing {count} {what}",
        )
    finally:
        worker.kill()
        worker.join(10)
    settle(sandbox)
    killed = worker.exitcode == -signal.SIGKILL
    assert killed or worker.exitcode == 0, f"the worker failed on its own: exit {worker.exitcode}"
    return Kill(what, count, killed)


def crash_cycle(world: World, rng: random.Random, cycle: int) -> list[Kill]:
    """Change 30 ERP invoices (status or amount), run a worker killed at a seeded moment of its
    sync or of its status-sync (sometimes a second one), check staging right after each kill,
    then rerun until done. The first cycle is the initial load: its kill cuts creates short."""
    if cycle:
        touch(world.erp_url, count=30, seed=cycle)
    world.sandbox.state.configure(seed=cycle, **FAULTS)
    staging_url = world.settings.staging_database_url.get_secret_value()
    first = ("invoices", rng.randint(1, 20))
    moments = [first if cycle == 0 else rng.choice((first, ("pushes", rng.randint(1, 4))))]
    if rng.random() < 0.3:
        moments.append(("invoices", rng.randint(1, 6)))
    kills = []
    for what, count in moments:
        worker = crash_worker.start(
            world.sandbox.base_url, world.erp_url, staging_url, world.reports_dir
        )
        kills.append(kill_after(worker, world.sandbox, what, count))
        assert_no_unacknowledged_send(world.store, world.sandbox)
    assert kills[0].killed, f"cycle {cycle}: the worker ended before {kills[0]}"
    world.sandbox.state.configure(fail_rate=0.0, drop_rate=0.0, latency_ms=0.0)
    world.until_done()
    return kills


def test_kill_9_at_random_moments_loses_nothing_and_counts_every_repeat(world: World) -> None:
    rng = random.Random(SEED)
    uuids: dict[str, str] = {}
    kills: list[Kill] = []
    for cycle in range(CYCLES):
        kills += crash_cycle(world, rng, cycle)
        assert_all(world, killed=sum(k.killed for k in kills))
        for key, invoice in world.sandbox.state.invoices().items():
            assert uuids.setdefault(key, invoice.uuid) == invoice.uuid, f"{key} got a new uuid"

        assert resent_after_crash(world) <= repeats_received(world) <= left_by_crashes(world)

    assert sum(k.killed for k in kills) >= 10, kills
    assert {k.what for k in kills if k.killed} == {"invoices", "pushes"}, kills
    resent = resent_after_crash(world)
    assert 0 < world.counted("resent_after_crash") <= resent, "the first kill cut creates short"
    assert world.counted("resent_after_lost_answer") == 0  # no fault here stores and then fails
    tally = push_tally(world.sandbox.state.pushes())
    repushed = world.counted("repushed_after_crash")
    assert 0 < tally.repeats <= repushed, (tally, repushed)


def resent_after_crash(world: World) -> int:
    """Resends after a crash that AppZen proved (a create answered UPDATED), as staging counts
    them invoice by invoice."""
    return sum(record.resent_after_crash for record in staged(world.store).values())


def repeats_received(world: World) -> int:
    """Versions AppZen stored whose acknowledgement staging never recorded: the truth."""
    records = staged(world.store)
    stored = world.sandbox.state.invoices()
    return sum(invoice.versions - records[key].send_count for key, invoice in stored.items())


def left_by_crashes(world: World) -> int:
    """Invoices the crashed runs held claimed when they died (each may have reached AppZen)."""
    runs = world.store.list_runs(100_000)
    return sum(run.counts.get("left_claimed", 0) for run in runs if run.status == "crashed")
