"""A status read met with staging: changed statuses found whether the read comes in key order
(one range scan) or not (IN lists), keys never staged counted, a dry run's plan; on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import random

from pipeline.staging import StageItem, StagingStore, StatusRead
from pipeline.staging.records import PushRecord
from pipeline.staging.statuses import StatusColumns
from tests.staging.test_status_sync import ERROR, M, sync


def _staged(store: StagingStore, n: int) -> list[str]:
    """``n`` acknowledged invoices, their status POSTED and told to AppZen."""
    run_id = store.start_run("nightly", M, {}, historical=False)
    keys = [f"K{i:04d}" for i in range(n)]
    sync(store, run_id, *(StageItem(key, "h", "POSTED") for key in keys))
    store.record_pushes(M, [PushRecord(key, "POSTED") for key in keys])
    return keys


def test_changed_statuses_are_found_in_key_order_or_not(store: StagingStore) -> None:
    keys = _staged(store, 60)
    reads = [StatusRead(key, "POSTED") for key in keys]
    reads[7] = StatusRead(keys[7], "PAID")
    reads[40] = StatusRead(keys[40], "POSTED", ERROR)
    reads.append(StatusRead("NEVER-SYNCED", "PAID"))
    shuffled = random.Random(3).sample(reads, len(reads))

    for chunk in (reads, shuffled, [reads[0], reads[7], reads[40], reads[59]]):
        result = store.compare_status_reads(M, chunk)
        assert sorted(r.invoice_id for r in result.changed) == [keys[7], keys[40]]
        assert result.not_staged == (1 if len(chunk) > 4 else 0)


def test_recorded_reads_are_pending_once_and_a_plan_names_them(store: StagingStore) -> None:
    keys = _staged(store, 5)
    reads = [StatusRead(keys[1], "PAID"), StatusRead(keys[2], "POSTED", ERROR)]

    plan = store.compare_status_reads(M, reads, plan=True)
    store.record_status_reads(M, store.compare_status_reads(M, reads).changed)
    again = store.compare_status_reads(M, reads)

    assert [(c.invoice_id, c.erp_status, c.erp_error) for c in plan.would_push] == [
        (keys[1], "PAID", None),
        (keys[2], "POSTED", ERROR),
    ]
    assert [c.invoice_id for c in store.status_candidates(M, 100)] == [keys[1], keys[2]]
    assert again.changed == []


Read = tuple[str, str | None, dict[str, str] | None]


def _columns(*reads: Read) -> StatusColumns:
    columns = StatusColumns()
    for key, status, error in reads:
        columns.append(key, status, error)
    return columns


def test_a_refreshed_chunk_records_exactly_the_changed_statuses(store: StagingStore) -> None:
    keys = _staged(store, 60)
    reads: list[Read] = [(key, "POSTED", None) for key in keys]
    reads[7] = (keys[7], "PAID", None)
    reads[40] = (keys[40], "POSTED", ERROR)
    reads.append(("NEVER-SYNCED", "PAID", None))

    first = store.refresh_status_reads(M, _columns(*reads))  # in key order: one range
    again = store.refresh_status_reads(M, _columns(*random.Random(3).sample(reads, len(reads))))

    assert (first.changed, first.not_staged) == (2, 1)
    assert (again.changed, again.not_staged) == (0, 1)
    pending = store.status_candidates(M, 100)
    assert [(c.invoice_id, c.erp_status, c.erp_error) for c in pending] == [
        (keys[7], "PAID", None),
        (keys[40], "POSTED", ERROR),
    ]


def test_a_refreshed_chunk_takes_a_keys_last_read_and_settles_what_was_told(
    store: StagingStore,
) -> None:
    keys = _staged(store, 6)
    store.refresh_status_reads(M, _columns((keys[1], "PAID", None), (keys[2], "PAID", None)))
    twice = _columns(
        (keys[1], "POSTED", None),  # back to what AppZen was told: nothing to push
        (keys[3], "POSTED", None),
        (keys[3], "PAID", None),  # read twice: the last wins
        (keys[4], "PAID", None),
        (keys[4], "POSTED", None),
    )

    refreshed = store.refresh_status_reads(M, twice)

    assert (refreshed.changed, refreshed.not_staged) == (2, 0)
    assert [c.invoice_id for c in store.status_candidates(M, 100)] == [keys[2], keys[3]]
    row = store.get_invoice(M, keys[1])
    assert row is not None
    assert row.erp_status == "POSTED"


def test_a_refreshed_chunk_finds_every_key_whatever_the_collation_orders_first(
    store: StagingStore,
) -> None:
    run_id = store.start_run("nightly", M, {}, historical=False)
    keys = ["B-2", "a-1", "ä-3", "Z 9", "z-0"]  # code-point order; a collation may differ
    sync(store, run_id, *(StageItem(key, "h", "POSTED") for key in keys))
    store.record_pushes(M, [PushRecord(key, "POSTED") for key in keys])

    refreshed = store.refresh_status_reads(M, _columns(*((key, "PAID", None) for key in keys)))

    assert (refreshed.changed, refreshed.not_staged) == (5, 0)
    assert sorted(c.invoice_id for c in store.status_candidates(M, 100)) == sorted(keys)
