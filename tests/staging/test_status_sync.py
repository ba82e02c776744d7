"""Status-sync support: candidates with keyset pagination, recorded pushes, and re-creation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipeline.staging import PushRecord, SendOutcome, StageItem, StagingError, StagingStore
from tests.staging.helpers import FakeClock

M = "ap_invoices"
ERROR = {"message": "vendor on hold", "status": "HOLD", "exception": "VendorHold"}


@pytest.fixture
def run_id(store: StagingStore) -> int:
    return store.start_run("nightly", M, {}, historical=False)


def sync(store: StagingStore, run_id: int, *items: StageItem) -> None:
    """Stage and acknowledge ``items`` (the poster's happy path)."""
    decisions = store.claim_batch(M, items, owner="w", lease_seconds=60, run_id=run_id)
    outcomes = [
        SendOutcome(
            d.invoice_id,
            item.payload_hash,
            b"{}",
            "acked",
            d.expect or "update",
            uuid=d.uuid or f"uuid-{d.invoice_id}",
            appzen_status="CREATED" if d.expect == "create" else "UPDATED",
        )
        for d, item in zip(decisions, items, strict=True)
        if d.action == "send"
    ]
    store.record_outcomes(run_id, M, outcomes)


def keys(store: StagingStore, limit: int = 100, after: str | None = None) -> list[str]:
    return [c.invoice_id for c in store.status_candidates(M, limit, after)]


def test_only_acknowledged_invoices_with_an_unpushed_status_are_candidates(
    store: StagingStore, run_id: int
) -> None:
    sync(
        store,
        run_id,
        StageItem("A", "h", "POSTED"),
        StageItem("B", "h", None, ERROR),
        StageItem("C", "h", None, None),
    )
    store.claim_batch(
        M, [StageItem("D", "h", "POSTED")], owner="w", lease_seconds=9, run_id=run_id
    )  # staged, never acknowledged
    candidates = store.status_candidates(M, 100)
    assert [c.invoice_id for c in candidates] == ["A", "B"]
    assert (candidates[0].uuid, candidates[0].erp_status, candidates[0].pushed_status) == (
        "uuid-A",
        "POSTED",
        None,
    )
    assert candidates[1].erp_error == ERROR


def test_candidates_page_by_key(store: StagingStore, run_id: int) -> None:
    sync(store, run_id, *(StageItem(f"K{n:03d}", "h", "POSTED") for n in range(25)))
    pages: list[list[str]] = []
    after: str | None = None
    while page := keys(store, 10, after):
        pages.append(page)
        after = page[-1]
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [key for page in pages for key in page] == [f"K{n:03d}" for n in range(25)]


def test_a_recorded_push_clears_the_candidate_until_the_erp_status_changes(
    store: StagingStore, run_id: int, clock: FakeClock
) -> None:
    sync(store, run_id, StageItem("A", "h", "POSTED"), StageItem("B", "h", None, ERROR))
    store.record_pushes(M, [PushRecord("A", "POSTED"), PushRecord("B", None, ERROR)])
    assert keys(store) == []
    record = store.get_invoice(M, "B")
    assert record is not None
    assert (record.pushed_error, record.pushed_at, record.push_count) == (ERROR, clock(), 1)
    # Same status again: nothing to push. A new status (same payload): a candidate again.
    store.claim_batch(M, [StageItem("A", "h", "POSTED")], owner="w", lease_seconds=9, run_id=run_id)
    assert keys(store) == []
    store.claim_batch(M, [StageItem("A", "h", "PAID")], owner="w", lease_seconds=9, run_id=run_id)
    [candidate] = store.status_candidates(M, 10)
    assert (candidate.invoice_id, candidate.erp_status, candidate.pushed_status) == (
        "A",
        "PAID",
        "POSTED",
    )


def test_a_push_of_a_status_that_moved_on_meanwhile_stays_pending(
    store: StagingStore, run_id: int
) -> None:
    sync(store, run_id, StageItem("A", "h", "POSTED"))
    [candidate] = store.status_candidates(M, 10)
    store.claim_batch(M, [StageItem("A", "h", "PAID")], owner="w", lease_seconds=9, run_id=run_id)
    store.record_pushes(M, [PushRecord(candidate.invoice_id, candidate.erp_status)])
    assert keys(store) == ["A"]


def test_mark_recreate_resends_as_a_create_and_pushes_again(
    store: StagingStore, run_id: int
) -> None:
    sync(store, run_id, StageItem("A", "h", "POSTED"))
    store.record_pushes(M, [PushRecord("A", "POSTED")])
    store.mark_recreate(M, "A", "status-sync 404: Error code : 17e3338d - not found")
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.uuid) == ("recreate", "uuid-A"), "the old uuid is kept"
    assert record.error_message == "status-sync 404: Error code : 17e3338d - not found"
    assert keys(store) == []
    [decision] = store.claim_batch(
        M, [StageItem("A", "h", "POSTED")], owner="w", lease_seconds=9, run_id=run_id
    )
    assert (decision.action, decision.expect) == ("send", "create"), "whatever the hash"
    store.record_outcomes(
        run_id,
        M,
        [SendOutcome("A", "h", b"{}", "acked", "create", uuid="uuid-new", appzen_status="CREATED")],
    )
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.uuid, record.uuid_lost_at, record.resent_after_crash) == (
        "sent",
        "uuid-new",
        None,
        0,
    )
    assert keys(store) == ["A"], "the new AppZen record has not had its status yet"


def test_a_recreate_that_fails_still_expects_a_create_next_time(
    store: StagingStore, run_id: int
) -> None:
    sync(store, run_id, StageItem("A", "h"))
    store.mark_recreate(M, "A", "404")
    store.claim_batch(M, [StageItem("A", "h")], owner="w", lease_seconds=9, run_id=run_id)
    store.record_outcomes(run_id, M, [SendOutcome("A", "h", b"{}", "retryable_failed", "create")])
    [decision] = store.claim_batch(
        M, [StageItem("A", "h")], owner="w", lease_seconds=9, run_id=run_id
    )
    assert (decision.action, decision.expect) == ("send", "create")


def test_mark_recreate_of_an_unknown_invoice_is_an_error(store: StagingStore) -> None:
    with pytest.raises(StagingError, match="no staged invoice 'ghost'"):
        store.mark_recreate(M, "ghost", "404")


def test_candidates_walk_the_push_index_on_sqlite(tmp_path: object, clock: FakeClock) -> None:
    with StagingStore.open(f"sqlite:///{tmp_path}/s.db", now=clock) as store:
        query = (
            "EXPLAIN QUERY PLAN SELECT invoice_id FROM invoices WHERE mapping = 'm' "
            "AND push_pending = 1 AND state = 'sent' AND uuid IS NOT NULL AND invoice_id > 'x' "
            "ORDER BY invoice_id LIMIT 500"
        )
        with store.engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(query))
    assert "ix_invoices_push" in plan
    assert "TEMP B-TREE" not in plan, f"no sort expected: {plan}"


def test_push_pending_tracks_the_erp_side_in_the_table(store: StagingStore, run_id: int) -> None:
    sync(store, run_id, StageItem("A", "h", "POSTED"))
    with store.engine.connect() as conn:
        flag = conn.execute(sa.text("SELECT push_pending FROM invoices WHERE invoice_id = 'A'"))
        assert bool(flag.scalar()) is True
    store.record_pushes(M, [PushRecord("A", "POSTED")])
    record = store.get_invoice(M, "A")
    assert record is not None
    assert record.push_pending is False
