"""record_outcomes: acked, rejected, retryable outcomes; the state machine; resent_after_crash."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.staging import SendOutcome, StageItem, StagingError, StagingStore, new_owner
from pipeline.staging.records import AppZenStatus, OutcomeKind
from tests.staging.helpers import FakeClock

M = "ap_invoices"


@pytest.fixture
def run_id(store: StagingStore) -> int:
    return store.start_run("nightly", M, {}, historical=False)


def stage(store: StagingStore, run_id: int, key: str, hash_: str, owner: str = "w1") -> str:
    [decision] = store.claim_batch(
        M, [StageItem(key, hash_)], owner=owner, lease_seconds=60, run_id=run_id
    )
    assert decision.action == "send"
    assert decision.expect is not None
    return decision.expect


def acked(key: str, hash_: str, status: str = "CREATED", expect: str = "create") -> SendOutcome:
    return SendOutcome(
        key,
        hash_,
        f'{{"invoice_id":"{key}","total":12.30}}'.encode(),
        "acked",
        expect,  # type: ignore[arg-type]
        uuid="75823296-4af2-4475-aafd-461c60c284e7",
        appzen_status=status,  # type: ignore[arg-type]
        http_status=201 if status == "CREATED" else 200,
        correlation_id="c-1",
        attempts=2,
        historical=True,
    )


def test_acked_records_everything_and_releases_the_claim(
    store: StagingStore, run_id: int, clock: FakeClock
) -> None:
    stage(store, run_id, "A", "h1")
    sent_at = clock()
    store.record_outcomes(run_id, M, [acked("A", "h1")])
    record = store.get_invoice(M, "A")
    assert record is not None
    assert record.state == "sent"
    assert (record.acked_hash, record.payload_hash) == ("h1", "h1")
    assert record.acked_payload == b'{"invoice_id":"A","total":12.30}'
    assert (record.uuid, record.appzen_status) == (
        "75823296-4af2-4475-aafd-461c60c284e7",
        "CREATED",
    )
    assert (record.last_http_status, record.correlation_id, record.attempts) == (201, "c-1", 2)
    assert (record.send_count, record.resent_after_crash, record.historical) == (1, 0, True)
    assert record.first_sent_at == record.last_sent_at == sent_at
    assert (record.claimed_by, record.claim_expires_at) == (None, None)


def test_a_second_ack_keeps_first_sent_at_and_counts_sends(
    store: StagingStore, run_id: int, clock: FakeClock
) -> None:
    stage(store, run_id, "A", "h1")
    first = clock()
    store.record_outcomes(run_id, M, [acked("A", "h1")])
    clock.advance(3600)
    assert stage(store, run_id, "A", "h2") == "update"
    store.record_outcomes(run_id, M, [acked("A", "h2", "UPDATED", "update")])
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.first_sent_at, record.last_sent_at) == (first, clock())
    assert (record.send_count, record.resent_after_crash, record.acked_hash) == (2, 0, "h2")


def test_updated_where_a_create_was_expected_counts_as_resent_after_crash_only_after_one(
    store: StagingStore, run_id: int
) -> None:
    # The create reached AppZen but its answer was lost: staging still has no uuid, so the resend
    # expects a create and AppZen answers UPDATED. Only a resend after a crash is counted on the
    # invoice (the cause comes from the claim: tests/staging/test_owners.py).
    assert stage(store, run_id, "A", "h1") == "create"
    assert stage(store, run_id, "B", "h1") == "create"
    store.release_claims("w1")
    stage(store, run_id, "A", "h1", owner="w2")
    stage(store, run_id, "B", "h1", owner="w2")
    store.record_outcomes(
        run_id,
        M,
        [
            replace(acked("A", "h1", "UPDATED", "create"), cause="crash"),
            replace(acked("B", "h1", "UPDATED", "create"), cause="lost_answer"),
        ],
    )
    a, b = store.get_invoice(M, "A"), store.get_invoice(M, "B")
    assert a is not None
    assert b is not None
    assert (a.state, a.resent_after_crash, a.send_count) == ("sent", 1, 1)
    assert (b.state, b.resent_after_crash, b.send_count) == ("sent", 0, 1)


def test_rejected_records_the_error_and_keeps_the_last_ack(
    store: StagingStore, run_id: int
) -> None:
    stage(store, run_id, "A", "h1")
    store.record_outcomes(run_id, M, [acked("A", "h1")])
    stage(store, run_id, "A", "h2")
    rejected = SendOutcome(
        "A",
        "h2",
        b"{}",
        "rejected",
        "update",
        http_status=400,
        error_code="17e3338d",
        error_message="total_amount: must be a number",
        correlation_id="c-9",
        attempts=1,
    )
    store.record_outcomes(run_id, M, [rejected])
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.rejected_hash, record.acked_hash) == ("rejected", "h2", "h1")
    assert (record.last_http_status, record.error_code) == (400, "17e3338d")
    assert (record.error_message, record.correlation_id) == (
        "total_amount: must be a number",
        "c-9",
    )
    assert record.uuid is not None
    assert record.send_count == 1
    assert record.claimed_by is None


def test_retryable_failure_is_recorded_and_never_marked_sent(
    store: StagingStore, run_id: int
) -> None:
    stage(store, run_id, "A", "h1")
    failed = SendOutcome(
        "A",
        "h1",
        b"{}",
        "retryable_failed",
        "create",
        http_status=503,
        error_message="Service Unavailable",
        attempts=6,
    )
    store.record_outcomes(run_id, M, [failed])
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.attempts, record.last_http_status) == ("failed_retryable", 6, 503)
    assert (record.acked_hash, record.uuid, record.send_count) == (None, None, 0)
    assert store.failed_invoice_ids(M) == {"A"}


def test_an_ack_for_a_payload_that_changed_meanwhile_leaves_the_invoice_pending(
    store: StagingStore, run_id: int, clock: FakeClock
) -> None:
    stage(store, run_id, "A", "h1", owner="w1")
    clock.advance(61)  # w1's lease expires while its request is in flight
    stage(store, run_id, "A", "h2", owner="w2")
    store.record_outcomes(run_id, M, [acked("A", "h1")], owner="w1")
    record = store.get_invoice(M, "A")
    assert record is not None
    assert (record.state, record.acked_hash, record.payload_hash) == ("pending", "h1", "h2")
    assert record.claimed_by == "w2", "w1 must not release the claim w2 now holds"


def test_one_batch_mixes_kinds(store: StagingStore, run_id: int) -> None:
    for key in "ABC":
        store.claim_batch(M, [StageItem(key, "h")], owner="w1", lease_seconds=60, run_id=run_id)
    batch = [
        acked("A", "h"),
        SendOutcome("B", "h", b"{}", "rejected", "create", http_status=422),
        SendOutcome("C", "h", b"{}", "retryable_failed", "create", http_status=429),
    ]
    store.record_outcomes(run_id, M, batch)
    assert store.count_by_state(M) == {"sent": 1, "rejected": 1, "failed_retryable": 1}


def test_outcomes_for_unknown_invoices_are_refused_whole(store: StagingStore, run_id: int) -> None:
    stage(store, run_id, "A", "h1")
    with pytest.raises(StagingError, match=r"no staged invoice \['ghost'\]"):
        store.record_outcomes(run_id, M, [acked("A", "h1"), acked("ghost", "h1")])
    record = store.get_invoice(M, "A")
    assert record is not None
    assert record.state == "pending", "the batch is one transaction"


def test_an_ack_needs_a_uuid() -> None:
    with pytest.raises(ValueError, match="needs AppZen's uuid"):
        SendOutcome("A", "h", b"{}", "acked", "create", appzen_status="CREATED")


KINDS: list[OutcomeKind] = ["acked", "rejected", "retryable_failed"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.tuples(st.sampled_from(["h1", "h2"]), st.sampled_from(KINDS)), max_size=8))
def test_sent_only_ever_follows_an_ack_of_the_current_payload(
    store: StagingStore, steps: list[tuple[str, OutcomeKind]]
) -> None:
    run_id = store.start_run("nightly", "prop", {}, historical=False)
    key = f"P{run_id}"
    for hash_, kind in steps:
        decisions = store.claim_batch(
            "prop",
            [StageItem(key, hash_)],
            owner="w",
            lease_seconds=60,
            run_id=run_id,
            retry_failed=True,
        )
        if decisions[0].action != "send":
            continue
        uuid = "u" if kind == "acked" else None
        status: AppZenStatus | None = "CREATED" if kind == "acked" else None
        outcome = SendOutcome(key, hash_, b"{}", kind, "create", uuid=uuid, appzen_status=status)
        store.record_outcomes(run_id, "prop", [outcome])
        record = store.get_invoice("prop", key)
        assert record is not None
        assert (record.state == "sent") == (kind == "acked")
        assert record.claimed_by is None
    record = store.get_invoice("prop", key)
    if record is not None and record.state == "sent":
        assert record.acked_hash == record.payload_hash


def test_reads_for_reports(store: StagingStore, run_id: int) -> None:
    for key in "ABCDE":
        stage(store, run_id, key, "h")
    store.record_outcomes(run_id, M, [acked(key, "h") for key in "ACE"])
    sample = store.sample_sent(M, 2)
    assert len(sample) == 2
    assert {record.invoice_id for record in sample} <= {"A", "C", "E"}
    assert {record.invoice_id for record in store.sample_sent(M, 10)} == {"A", "C", "E"}
    assert store.count_by_state(M) == {"sent": 3, "pending": 2}
    assert store.get_invoice(M, "nope") is None
    assert store.get_invoice("other", "A") is None


def test_owners_are_unique_per_call() -> None:
    first, second = new_owner("poster"), new_owner("poster")
    assert first != second
    assert first.startswith("poster@")
