"""claim_batch: every decision, the state transitions it makes, and claims with their leases."""

from __future__ import annotations

import pytest

from pipeline.staging import Expect, SendOutcome, StageItem, StagingStore
from pipeline.staging.records import AppZenStatus
from tests.staging.helpers import FakeClock

M = "ap_invoices"


@pytest.fixture
def run_id(store: StagingStore) -> int:
    return store.start_run("nightly", M, {}, historical=False)


def claim(
    store: StagingStore,
    run_id: int,
    *items: StageItem,
    owner: str = "w1",
    force: bool = False,
    retry_failed: bool = False,
) -> dict[str, tuple[str, str | None]]:
    decisions = store.claim_batch(
        M,
        items,
        owner=owner,
        lease_seconds=60,
        run_id=run_id,
        force=force,
        retry_failed=retry_failed,
    )
    return {d.invoice_id: (d.action, d.expect) for d in decisions}


def ack(
    store: StagingStore, run_id: int, key: str, hash_: str, *, expect: Expect = "create"
) -> None:
    status: AppZenStatus = "CREATED" if expect == "create" else "UPDATED"
    outcome = SendOutcome(
        key,
        hash_,
        b'{"invoice_id": "%s"}' % key.encode(),
        "acked",
        expect,
        uuid=f"uuid-{key}",
        appzen_status=status,
        http_status=201,
    )
    store.record_outcomes(run_id, M, [outcome])


def reject(store: StagingStore, run_id: int, key: str, hash_: str) -> None:
    outcome = SendOutcome(
        key,
        hash_,
        b"{}",
        "rejected",
        "create",
        http_status=400,
        error_code="17e3338d",
        error_message="invoice_date: bad date",
        correlation_id="corr-1",
    )
    store.record_outcomes(run_id, M, [outcome])


def test_new_invoice_is_pending_and_sent_as_a_create(store: StagingStore, run_id: int) -> None:
    decisions = claim(store, run_id, StageItem("A", "h1", "POSTED"))
    assert decisions == {"A": ("send", "create")}
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.payload_hash, record.erp_status) == ("pending", "h1", "POSTED")
    assert (record.claimed_by, record.last_run_id) == ("w1", run_id)


def test_acked_and_unchanged_is_not_sent_again(store: StagingStore, run_id: int) -> None:
    claim(store, run_id, StageItem("A", "h1"))
    ack(store, run_id, "A", "h1")
    assert claim(store, run_id, StageItem("A", "h1")) == {"A": ("unchanged", None)}
    record = store.get_invoice(M, "A")
    assert record is not None
    assert record.claimed_by is None


def test_changed_payload_goes_back_to_pending_and_is_sent_as_an_update(
    store: StagingStore, run_id: int
) -> None:
    claim(store, run_id, StageItem("A", "h1"))
    ack(store, run_id, "A", "h1")
    assert claim(store, run_id, StageItem("A", "h2")) == {"A": ("send", "update")}
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.payload_hash, record.acked_hash) == ("pending", "h2", "h1")


def test_force_resends_unchanged_invoices(store: StagingStore, run_id: int) -> None:
    claim(store, run_id, StageItem("A", "h1"))
    ack(store, run_id, "A", "h1")
    assert claim(store, run_id, StageItem("A", "h1"), force=True) == {"A": ("send", "update")}


def test_rejected_is_not_retried_until_its_data_changes(store: StagingStore, run_id: int) -> None:
    claim(store, run_id, StageItem("A", "bad"))
    reject(store, run_id, "A", "bad")
    assert claim(store, run_id, StageItem("A", "bad")) == {"A": ("rejected_unchanged", None)}
    assert claim(store, run_id, StageItem("A", "fixed")) == {"A": ("send", "create")}
    record = store.get_invoice(M, "A")
    assert record is not None
    assert record.state == "pending"


@pytest.mark.parametrize("flag", ["retry_failed", "force"])
def test_rejected_is_retried_when_asked(store: StagingStore, run_id: int, flag: str) -> None:
    claim(store, run_id, StageItem("A", "bad"))
    reject(store, run_id, "A", "bad")
    decisions = claim(
        store,
        run_id,
        StageItem("A", "bad"),
        force=flag == "force",
        retry_failed=flag == "retry_failed",
    )
    assert decisions == {"A": ("send", "create")}


def test_failed_retryable_is_tried_again_on_the_next_run(store: StagingStore, run_id: int) -> None:
    claim(store, run_id, StageItem("A", "h1"))
    outcome = SendOutcome("A", "h1", b"{}", "retryable_failed", "create", http_status=503)
    store.record_outcomes(run_id, M, [outcome])
    assert store.count_by_state(M) == {"failed_retryable": 1}
    assert claim(store, run_id, StageItem("A", "h1")) == {"A": ("send", "create")}


def test_another_owners_live_claim_is_busy(store: StagingStore, run_id: int) -> None:
    assert claim(store, run_id, StageItem("A", "h1"), owner="w1") == {"A": ("send", "create")}
    assert claim(store, run_id, StageItem("A", "h1"), owner="w2") == {"A": ("busy", None)}
    # The owner itself may claim again (a retried task), which renews its lease.
    assert claim(store, run_id, StageItem("A", "h1"), owner="w1") == {"A": ("send", "create")}


def test_an_expired_lease_frees_the_invoice(
    store: StagingStore, run_id: int, clock: FakeClock
) -> None:
    claim(store, run_id, StageItem("A", "h1"), owner="w1")
    clock.advance(59.9)
    assert claim(store, run_id, StageItem("A", "h1"), owner="w2") == {"A": ("busy", None)}
    clock.advance(0.1)
    assert claim(store, run_id, StageItem("A", "h1"), owner="w2") == {"A": ("send", "create")}
    record = store.get_invoice(M, "A")
    assert record is not None
    assert record.claimed_by == "w2"


def test_release_claims_frees_an_aborted_batch_and_keeps_it_pending(
    store: StagingStore, run_id: int
) -> None:
    claim(store, run_id, StageItem("A", "h1"), StageItem("B", "h1"), owner="w1")
    assert store.release_claims("w1") == 2
    assert store.count_by_state(M) == {"pending": 2}
    assert claim(store, run_id, StageItem("A", "h1"), owner="w2") == {"A": ("send", "create")}


def test_decisions_keep_the_order_of_the_items_across_chunks(
    store: StagingStore, run_id: int
) -> None:
    items = [StageItem(f"K{n:05d}", "h1") for n in reversed(range(1_203))]
    decisions = store.claim_batch(M, items, owner="w1", lease_seconds=60, run_id=run_id)
    assert [d.invoice_id for d in decisions] == [item.invoice_id for item in items]
    assert {d.action for d in decisions} == {"send"}
    assert store.count_by_state(M) == {"pending": 1_203}


def test_mixed_batch_gets_one_decision_each(store: StagingStore, run_id: int) -> None:
    claim(store, run_id, StageItem("sent", "h"), StageItem("rej", "h"), StageItem("busy", "h"))
    ack(store, run_id, "sent", "h")
    reject(store, run_id, "rej", "h")
    claim(store, run_id, StageItem("busy", "h"), owner="other")  # still w1's: busy for other
    batch = (
        StageItem("sent", "h"),
        StageItem("rej", "h"),
        StageItem("busy", "h"),
        StageItem("new", "h"),
    )
    assert claim(store, run_id, *batch, owner="w2") == {
        "sent": ("unchanged", None),
        "rej": ("rejected_unchanged", None),
        "busy": ("busy", None),
        "new": ("send", "create"),
    }


def test_keys_are_case_sensitive_and_mappings_separate(store: StagingStore, run_id: int) -> None:
    claim(store, run_id, StageItem("inv-1", "h"), StageItem("INV-1", "h"))
    assert store.count_by_state(M) == {"pending": 2}
    other = store.claim_batch(
        "other", [StageItem("inv-1", "h")], owner="w1", lease_seconds=5, run_id=run_id
    )
    assert [d.action for d in other] == ["send"]
    assert store.count_by_state("other") == {"pending": 1}


def test_erp_status_and_error_are_refreshed_on_every_claim(
    store: StagingStore, run_id: int
) -> None:
    claim(store, run_id, StageItem("A", "h", "PARKED"))
    error = {"message": "vendor blocked", "status": "E1", "exception": None}
    claim(store, run_id, StageItem("A", "h", None, error))
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.erp_status, record.erp_error) == (None, error)


def test_a_duplicate_key_in_one_batch_is_refused(store: StagingStore, run_id: int) -> None:
    with pytest.raises(ValueError, match="'A' appears twice"):
        claim(store, run_id, StageItem("A", "h1"), StageItem("A", "h2"))
    assert store.count_by_state(M) == {}


def test_bad_arguments_are_refused(store: StagingStore, run_id: int) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        store.claim_batch(M, [StageItem("A", "h")], owner="w", lease_seconds=0, run_id=run_id)
    with pytest.raises(ValueError, match="invoice_id"):
        StageItem("x" * 256, "h")
    with pytest.raises(ValueError, match="payload_hash"):
        StageItem("A", "")


def test_an_empty_batch_is_a_no_op(store: StagingStore, run_id: int) -> None:
    assert store.claim_batch(M, [], owner="w", lease_seconds=5, run_id=run_id) == []


def test_acked_sources_name_the_source_hash_of_acknowledged_current_payloads(
    store: StagingStore, run_id: int
) -> None:
    items = [StageItem(k, "h1", source_hash=f"s-{k}") for k in ("A", "B", "C", "D")]
    claim(store, run_id, *items, StageItem("E", "h1"))
    for key in ("A", "B", "C", "E"):
        ack(store, run_id, key, "h1")
    claim(store, run_id, StageItem("B", "h2", source_hash="s-B2"))  # changed, not acked yet
    reject(store, run_id, "C", "h1")  # refused: not what AppZen holds

    found = store.acked_sources(M, ["A", "B", "C", "D", "E", "F"])

    assert found == {"A": "s-A"}  # D never acked, E staged without a source hash, F unknown
    assert store.acked_sources("another_mapping", ["A"]) == {}
    claim(store, run_id, StageItem("A", "h1", source_hash="s-A2"))  # same payload, new rows
    assert store.acked_sources(M, ["A"]) == {"A": "s-A2"}
