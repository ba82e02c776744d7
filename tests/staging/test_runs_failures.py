"""Runs (start, finish, watermark, listing) and the failures of each run with first/last seen."""

from __future__ import annotations

import pytest

from pipeline.failures import RowFailure
from pipeline.staging import SendOutcome, StageItem, StagingError, StagingStore
from tests.staging.helpers import FakeClock

M = "ap_invoices"


def test_a_run_is_started_then_finished(store: StagingStore, clock: FakeClock) -> None:
    started = clock()
    run_id = store.start_run("backfill", M, {"since": "2024-01-01", "limit": 5}, historical=True)
    running = store.get_run(run_id)
    assert running is not None
    assert (running.flow, running.mapping, running.status, running.historical) == (
        "backfill",
        M,
        "running",
        True,
    )
    assert (running.parameters, running.started_at, running.finished_at) == (
        {"since": "2024-01-01", "limit": 5},
        started,
        None,
    )
    clock.advance(90)
    counts = {"extracted": 10, "mapped": 9, "failed_mapping": 1, "created": 9}
    store.finish_run(run_id, status="succeeded", counts=counts, watermark="2024-02-01T00:00:00Z")
    done = store.get_run(run_id)
    assert done is not None
    assert (done.status, done.counts, done.finished_at) == ("succeeded", counts, clock())
    assert done.watermark == "2024-02-01T00:00:00Z"


def test_last_watermark_comes_from_the_last_succeeded_run_that_has_one(
    store: StagingStore,
) -> None:
    assert store.last_watermark(M) is None
    for status, watermark in [
        ("succeeded", "w1"),
        ("succeeded", "w2"),
        ("failed", "w3"),
        ("succeeded", None),
        ("interrupted", "w4"),
    ]:
        run_id = store.start_run("nightly", M, {}, historical=False)
        store.finish_run(run_id, status=status, counts={}, watermark=watermark)  # type: ignore[arg-type]
    store.start_run("nightly", M, {}, historical=False)  # still running
    other = store.start_run("nightly", "other", {}, historical=False)
    store.finish_run(other, status="succeeded", counts={}, watermark="w9")
    assert store.last_watermark(M) == "w2"


def test_list_runs_is_newest_first_and_get_run_of_an_unknown_id_is_none(
    store: StagingStore,
) -> None:
    ids = [store.start_run("nightly", M, {}, historical=False) for _ in range(3)]
    assert [run.id for run in store.list_runs(limit=2)] == ids[::-1][:2]
    assert store.get_run(max(ids) + 100) is None


def test_a_run_is_finished_once(store: StagingStore) -> None:
    run_id = store.start_run("nightly", M, {}, historical=False)
    store.finish_run(run_id, status="failed", counts={"failed": 1})
    with pytest.raises(StagingError, match=f"run {run_id} is already failed"):
        store.finish_run(run_id, status="succeeded", counts={})
    with pytest.raises(StagingError, match="does not exist"):
        store.finish_run(run_id + 1000, status="succeeded", counts={})
    with pytest.raises(ValueError, match="status must be one of"):
        store.finish_run(run_id, status="running", counts={})


def failure(key: str | None, rule: str = "required", **fields: object) -> RowFailure:
    return RowFailure(
        source_key=key,
        source_location=f"exports/ap.csv:{len(key or '')}",
        stage="mapping",
        rule=rule,
        message="total_amount is required",
        **fields,  # type: ignore[arg-type]
    )


def test_failures_round_trip_with_every_field(store: StagingStore, clock: FakeClock) -> None:
    run_id = store.start_run("nightly", M, {}, historical=False)
    full = RowFailure(
        source_key="INV-1",
        source_location="sql/sample_erp.sql row 17",
        stage="appzen",
        rule="appzen_400",
        message="rejected",
        field_path="invoice_lines[0].quantity",
        source_column="qty",
        value="'abc'",
        hint="quantity must be a number",
        http_status=400,
        error_code="17e3338d",
        correlation_id="corr-7",
        attempts=3,
    )
    store.record_failures(run_id, M, [full, failure(None)])
    [first, second] = store.failures_for_run(run_id)
    assert first.failure == full
    assert (first.run_id, first.mapping, first.first_seen_at, first.last_seen_at) == (
        run_id,
        M,
        clock(),
        clock(),
    )
    assert second.failure.source_key is None


def test_first_seen_is_when_the_key_first_failed_that_rule_in_any_run(
    store: StagingStore, clock: FakeClock
) -> None:
    day1 = clock()
    run1 = store.start_run("nightly", M, {}, historical=False)
    store.record_failures(run1, M, [failure("A"), failure("B")])
    clock.advance(86_400)
    run2 = store.start_run("nightly", M, {}, historical=False)
    store.record_failures(
        run2, M, [failure("A"), failure("A", rule="date_format"), failure("A", field_path="lines")]
    )
    store.record_failures(run2, "other-mapping", [failure("B")])
    seen = [
        (f.failure.source_key, f.failure.rule, f.first_seen_at, f.last_seen_at)
        for f in store.failures_for_run(run2)
    ]
    day2 = clock()
    assert seen == [
        ("A", "required", day1, day2),
        ("A", "date_format", day2, day2),
        ("A", "required", day1, day2),
        ("B", "required", day2, day2),
    ]


def test_failed_invoice_ids_for_retry_failed(store: StagingStore) -> None:
    run_id = store.start_run("retry", M, {}, historical=False)
    items = [StageItem(key, "h") for key in ("ok", "rej", "tmp")]
    store.claim_batch(M, items, owner="w", lease_seconds=9, run_id=run_id)
    store.record_outcomes(
        run_id,
        M,
        [
            SendOutcome("ok", "h", b"{}", "acked", "create", uuid="u", appzen_status="CREATED"),
            SendOutcome("rej", "h", b"{}", "rejected", "create", http_status=400),
            SendOutcome("tmp", "h", b"{}", "retryable_failed", "create", http_status=503),
        ],
    )
    store.record_failures(run_id, M, [failure("unmappable"), failure(None)])
    assert store.failed_invoice_ids(M) == {"rej", "tmp"}
    assert store.failed_invoice_ids(M, run_id) == {"rej", "tmp", "unmappable"}
    assert store.failed_invoice_ids("other", run_id) == set()


def test_failures_need_an_existing_run(store: StagingStore) -> None:
    with pytest.raises(StagingError, match="recording 1 failures of run 999999"):
        store.record_failures(999_999, M, [failure("A")])
