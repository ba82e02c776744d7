"""Claims that follow their owner: a gone owner's claims are taken over at once (its process is
gone or recycled on this machine, its run ended, or its lease ran out without a heartbeat), a
live owner's are left alone and named; dead runs are marked crashed with what they left."""

from __future__ import annotations

import os
import subprocess
import sys

from pipeline.staging import SendOutcome, StageItem, StagingStore
from pipeline.staging.owners import DEFAULT_LEASE_S, Owner, host_id, process_start
from pipeline.staging.records import Decision
from tests.staging.helpers import FakeClock

M = "ap_invoices"


def dead_owner(label: str = "dead") -> Owner:
    """The owner of a process of this machine that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_start(child.pid)
    child.wait()
    return Owner(f"{label}@{child.pid}", "here", host_id(), child.pid, started or "1")


def live_owner(label: str = "live") -> Owner:
    return Owner.of_this_process(label)


def remote_owner(label: str = "remote") -> Owner:
    """An owner on another machine: only its lease tells whether it lives."""
    return Owner(f"{label}@db2", "db2", "db2/boot/pid:[1]", 4242, "99")


def start(store: StagingStore, owner: Owner, lease: float = DEFAULT_LEASE_S) -> int:
    return store.start_run("sync", M, {}, False, owner=owner, lease_seconds=lease)


def claim(store: StagingStore, run_id: int, owner: Owner, *keys: str) -> list[Decision]:
    items = [StageItem(key, "h1") for key in keys]
    return store.claim_batch(M, items, owner=owner.token, lease_seconds=60, run_id=run_id)


def updated(key: str, decision: Decision) -> SendOutcome:
    """AppZen answering UPDATED to the create of ``key``: it had the invoice already."""
    return SendOutcome(
        key, "h1", b"{}", "acked", "create", uuid=f"u-{key}", appzen_status="UPDATED",
        cause=decision.cause,
    )  # fmt: skip


def test_a_dead_processes_claims_are_taken_over_at_once_and_the_resend_counted(
    store: StagingStore,
) -> None:
    dead = dead_owner()
    first = start(store, dead)
    assert [d.action for d in claim(store, first, dead, "A", "B")] == ["send", "send"]

    rerun = live_owner()
    second = start(store, rerun)
    decisions = claim(store, second, rerun, "A", "B")  # no lease waited out

    assert [(d.action, d.cause) for d in decisions] == [("send", "crash")] * 2
    store.record_outcomes(second, M, [updated("A", decisions[0])], owner=rerun.token)
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.resent_after_crash, record.claimed_by) == ("sent", 1, None)


def test_a_recycled_pid_is_a_gone_owner(store: StagingStore) -> None:
    me = live_owner()
    recycled = Owner("old@here", me.host, me.host_id, os.getpid(), "started-at-another-time")
    first = start(store, recycled)
    claim(store, first, recycled, "A")

    [decision] = claim(store, start(store, me), me, "A")

    assert (decision.action, decision.cause) == ("send", "crash")


def test_a_live_owners_claims_are_left_alone_and_the_holder_named(store: StagingStore) -> None:
    holder = live_owner("holder")
    first = start(store, holder)
    claim(store, first, holder, "A")
    other = live_owner("other")

    [decision] = claim(store, start(store, other), other, "A")

    assert decision.action == "busy"
    assert decision.holder == f"run {first} (host {holder.host}, pid {os.getpid()})"


def test_an_owner_on_another_machine_holds_its_claims_while_it_beats(
    store: StagingStore, clock: FakeClock
) -> None:
    remote = remote_owner()
    first = start(store, remote)
    claim(store, first, remote, "A")
    me = live_owner()
    second = start(store, me)
    clock.advance(DEFAULT_LEASE_S - 1)
    assert store.heartbeat(first, DEFAULT_LEASE_S, {"created": 3})
    clock.advance(DEFAULT_LEASE_S - 1)  # long past the first lease, within the renewed one
    assert claim(store, second, me, "A")[0].action == "busy"

    clock.advance(2)  # no heartbeat for a whole lease

    [decision] = claim(store, second, me, "A")
    assert (decision.action, decision.cause) == ("send", "crash")


def test_dead_runs_are_marked_crashed_with_what_they_did_and_left(
    store: StagingStore, clock: FakeClock
) -> None:
    dead, live = dead_owner(), live_owner()
    crashed, running = start(store, dead), start(store, live)
    claim(store, crashed, dead, "A", "B")
    assert store.heartbeat(crashed, DEFAULT_LEASE_S, {"extracted": 2, "planned_create": 2})

    [reaped] = store.reap_dead_runs()

    assert (reaped.run_id, reaped.left_claimed) == (crashed, 2)
    run = store.get_run(crashed)
    assert run is not None
    assert run.status == "crashed"
    assert run.reason == f"crashed: its process {dead.pid} on here no longer exists"
    assert run.counts == {"extracted": 2, "planned_create": 2, "left_claimed": 2}
    assert run.finished_at == clock()
    assert all(store.get_invoice(M, k).claimed_by is None for k in "AB")  # type: ignore[union-attr]
    assert store.get_run(running).status == "running"  # type: ignore[union-attr]
    assert not store.heartbeat(crashed, DEFAULT_LEASE_S, {})
    assert store.reap_dead_runs() == []
    # the freed invoices still name the crashed run: a resend of them is a resend after a crash
    assert claim(store, running, live, "A")[0].cause == "crash"


def test_a_run_that_ended_leaves_a_lost_answer_and_a_never_claimed_one_another_worker(
    store: StagingStore,
) -> None:
    me = live_owner()
    first = start(store, me)
    claim(store, first, me, "A")
    store.record_outcomes(
        first, M, [SendOutcome("A", "h1", b"{}", "retryable_failed", "create", attempts=3)]
    )
    store.finish_run(first, status="succeeded", counts={})

    second = start(store, me)
    decisions = claim(store, second, me, "A", "N")

    assert [d.cause for d in decisions] == ["lost_answer", "other_worker"]


def test_a_claim_no_run_records_expires_with_its_lease(
    store: StagingStore, clock: FakeClock
) -> None:
    run_id = store.start_run("sync", M, {}, False)
    store.claim_batch(M, [StageItem("A", "h1")], owner="legacy@x", lease_seconds=300, run_id=run_id)
    me = live_owner()
    second = start(store, me)
    assert claim(store, second, me, "A")[0].action == "busy"

    clock.advance(301)

    assert claim(store, second, me, "A")[0].action == "send"
