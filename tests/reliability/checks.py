"""The promises checked after every reliability scenario: AppZen (the sandbox), staging, the ERP
and the failed-row reports agree, invoice by invoice (docs/guarantees.md names each check)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from pipeline.devkit.sandbox import SandboxServer, StatusPush
from pipeline.devkit.sandbox.wire import dumps_exact, loads_exact
from pipeline.staging import InvoiceRecord, InvoiceState, StagingStore
from tests.reliability.world import NAME, Expected, World

STATES: tuple[InvoiceState, ...] = ("pending", "sent", "rejected", "failed_retryable", "recreate")


def staged(store: StagingStore) -> dict[str, InvoiceRecord]:
    """Every staged invoice of the sample ERP mapping, by key."""
    records: dict[str, InvoiceRecord] = {}
    for state in STATES:
        for record in store.invoices_in_state(NAME, state, 1_000_000):
            records[record.invoice_id] = record
    return records


def same_json(stored: dict[str, Any], payload: bytes | None) -> bool:
    """The sandbox's stored invoice is ``payload`` exactly (numbers with their scale)."""
    return payload is not None and dumps_exact(stored) == dumps_exact(loads_exact(payload))


def assert_no_unacknowledged_send(store: StagingStore, sandbox: SandboxServer) -> None:
    """Nothing is recorded as sent (a uuid in staging) that the sandbox never acknowledged: every
    staged uuid is the sandbox's uuid for that invoice, and an invoice without an ack was never
    counted as sent. Holds at any moment, even right after a kill -9."""
    stored = sandbox.state.invoices()
    for key, record in staged(store).items():
        if record.uuid is None:
            assert record.send_count == 0, f"{key}: send_count {record.send_count} without a uuid"
            assert record.state != "sent", f"{key}: sent without a uuid"
            continue
        assert key in stored, f"{key}: staging holds uuid {record.uuid}; AppZen has no such invoice"
        assert stored[key].uuid == record.uuid, f"{key}: uuid differs from AppZen's"
        assert record.send_count <= stored[key].versions, f"{key}: more acks than AppZen commits"


def assert_converged(world: World, expected: Expected) -> None:
    """After the reruns: every valid invoice is in AppZen with its latest payload and staged sent
    with AppZen's uuid; every invalid one is in a failed-row report with its reason; no claim is
    held; AppZen holds nothing the ERP does not."""
    refused = world.refused_by_appzen(expected)
    stored = world.sandbox.state.invoices()
    records = staged(world.store)
    accepted = set(expected.valid) - refused
    assert set(stored) == accepted, (
        f"AppZen lacks {sorted(accepted - set(stored))[:5]}, "
        f"has extra {sorted(set(stored) - accepted)[:5]}"
    )
    for key in accepted:
        record, mapped = records[key], expected.valid[key]
        assert same_json(stored[key].payload, mapped.payload), f"{key}: AppZen has an old payload"
        assert (record.state, record.uuid) == ("sent", stored[key].uuid), key
        assert record.acked_payload == mapped.payload, f"{key}: staging acked another payload"
        assert record.appzen_status == ("CREATED" if stored[key].versions == 1 else "UPDATED"), key
        assert record.claimed_by is None, f"{key}: claim still held by {record.claimed_by}"
    for key in refused:
        assert records[key].state == "rejected", f"{key}: AppZen refused it; staged {records[key]}"
        assert records[key].uuid is None
    assert_reported(world, expected, refused)


def assert_reported(world: World, expected: Expected, refused: set[str]) -> None:
    """Every invalid invoice is in a failed-row report (CSV) with its reason."""
    rows = defaultdict(list)
    for row in world.report_rows():
        rows[row["source key"]].append(row)
    dirty = world.erp.dirty_ids
    for key, rejected in expected.invalid.items():
        reported = rows.get(key)
        assert reported, f"{key} ({dirty.get(key)}) is in no failed-row report"
        reasons = {(r["stage"], r["rule"], r["message"]) for r in reported}
        for failure in rejected.failures:
            assert (failure.stage, failure.rule, failure.message) in reasons, (key, reasons)
    for key in refused:
        reported = [r for r in rows.get(key, []) if r["stage"] == "appzen"]
        assert reported, f"{key}: refused by AppZen but in no failed-row report"
        for row in reported:
            assert (row["rule"], row["HTTP status"]) == ("appzen_400", "400"), row
            assert "is not a supplier of this customer" in row["message"], row
            assert row["x-correlation-id"], row


@dataclass(frozen=True, slots=True)
class PushTally:
    """What AppZen received from status-sync: pushes, and how many repeated the one before."""

    pushes: int
    repeats: int


def push_tally(pushes: list[StatusPush]) -> PushTally:
    """Count pushes that repeat, for the same uuid, the state the push before it reported."""
    last: dict[str, str] = {}
    repeats = 0
    for push in pushes:
        body = dumps_exact({k: v for k, v in push.sync.items() if k != "timestamp"}).decode()
        repeats += last.get(push.uuid) == body
        last[push.uuid] = body
    return PushTally(len(pushes), repeats)


def assert_statuses_pushed(world: World, expected: Expected) -> None:
    """AppZen's last status of every sent invoice is the ERP's; staging records it as pushed;
    every repeated push is one the runs counted as a possible repeat."""
    stored = world.sandbox.state.invoices()
    latest: dict[str, StatusPush] = {p.uuid: p for p in world.sandbox.state.pushes()}
    records = staged(world.store)
    for key, invoice in stored.items():
        mapped, record = expected.valid[key], records[key]
        error = mapped.erp_error.model_dump(exclude_none=True) if mapped.erp_error else None
        last = latest.get(invoice.uuid)
        if mapped.erp_status is None and error is None:
            assert last is None, f"{key}: nothing to report, yet pushed {last}"
            continue
        assert last is not None, f"{key}: status {mapped.erp_status} never pushed"
        push = last
        assert push.sync.get("invoice_status") == mapped.erp_status, (key, push.sync)
        assert push.sync["appzen_invoice_state"] == ("ERROR" if error else "CREATED"), key
        if error:
            assert push.sync["error_data"] == error, (key, push.sync)
        assert record.pushed_status == mapped.erp_status, key
        assert not record.push_pending, f"{key}: still pending after the reruns"
    tally = push_tally(world.sandbox.state.pushes())
    counted = world.counted("repushed_after_crash") + world.counted("repushed_after_lost_answer")
    assert tally.repeats <= counted, f"{tally} but only {counted} possible repeats counted"


def assert_runs_closed(world: World, killed: int = 0, failed: int = 0) -> None:
    """Every run is closed: succeeded, but ``failed`` stopped by a fatal answer and at most one
    per kill ``crashed`` (marked so by the next run: none is left ``running``), each naming its
    dead process."""
    runs = world.store.list_runs(100_000)
    statuses = Counter(run.status for run in runs)
    assert statuses["running"] == 0, statuses
    assert (statuses["crashed"] > 0) == (killed > 0), statuses
    assert statuses["crashed"] <= killed, statuses
    assert statuses["failed"] == failed, statuses
    assert statuses["interrupted"] == statuses["partial"] == 0, statuses
    for run in runs:
        if run.status == "crashed":
            assert "no longer exists" in (run.reason or ""), run


def assert_counts_add_up(summary_counts: dict[str, int], *, fatal: bool = False) -> None:
    """A sync run's counts add up (see pipeline/load/tally.py)."""
    c: Counter[str] = Counter(summary_counts)
    assert c["extracted"] == c["mapped"] + c["failed_mapping"] + c["failed_validation"], c
    decided = ("planned_create", "planned_update", "unchanged", "rejected_unchanged", "busy")
    assert c["mapped"] == sum(c[k] for k in decided), c
    answered = ("created", "updated", "failed_appzen", "failed_retries", "left_pending")
    planned = c["planned_create"] + c["planned_update"] + c["recreate_resent"]
    assert planned == sum(c[k] for k in answered), c
    if not fatal:
        assert c["requests"] == sum(c[k] for k in answered[:4]) + c["retries"], c


def assert_all(world: World, *, killed: int = 0, failed: int = 0) -> Expected:
    """Every check above, on the ERP as it is now; the expectation used."""
    expected = world.expected()
    assert_no_unacknowledged_send(world.store, world.sandbox)
    assert_converged(world, expected)
    assert_statuses_pushed(world, expected)
    assert_runs_closed(world, killed, failed)
    for summary in world.summaries:
        if summary.flow == "sync":
            assert_counts_add_up(dict(summary.counts), fatal=summary.fatal is not None)
    return expected
