"""Audit outcomes and write-backs in staging (migration 003) on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.staging import StagingStore
from pipeline.staging.audit import AuditOutcome, Writeback
from tests.connectors.conftest import stage_sent
from tests.databases import DIALECTS, empty_database

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=DIALECTS)
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StagingStore]:
    """One migrated store per dialect for the module; each test uses its own mapping names."""
    folder = tmp_path_factory.mktemp("audit")
    with empty_database(str(request.param), Path(folder), "connectors_audit") as url:
        opened = StagingStore.open(url)
        yield opened
        opened.close()


@pytest.fixture
def mapping() -> str:
    """A mapping name no other test uses."""
    return f"m_{secrets.token_hex(4)}"


def test_outcomes_are_stored_and_a_poll_never_goes_back_in_time(
    store: StagingStore, mapping: str
) -> None:
    rule: dict[str, str | None] = {"rule_code": "dup", "risk_level": "HIGH", "risk_message": "€ ü"}
    rules = (rule,)
    newer = AuditOutcome(
        "A-1", "REJECTED", uuid="u", reason="r" * 300, rules=rules, appzen_updated_at=T0
    )
    assert store.audit.record_outcomes(mapping, [newer]) == 1
    stale = AuditOutcome("A-1", "APPROVED", uuid="u", appzen_updated_at=T0 - timedelta(hours=1))
    assert store.audit.record_outcomes(mapping, [stale]) == 0
    found = store.audit.outcome(mapping, "A-1")
    assert found is not None
    assert (found.outcome, found.rules, found.appzen_updated_at) == ("REJECTED", rules, T0)
    assert found.reason == "r" * 255, "cut to the column's 255 characters"
    assert found.recorded_at is not None
    later = AuditOutcome("A-1", "APPROVED", uuid="u", appzen_updated_at=T0 + timedelta(hours=1))
    assert store.audit.record_outcomes(mapping, [later]) == 1
    from_file = AuditOutcome("A-1", "REJECTED", source="file", reason="manual")
    assert store.audit.record_outcomes(mapping, [from_file]) == 1, "a file outcome always wins"
    assert store.audit.outcome(mapping, "A-1").outcome == "REJECTED"  # type: ignore[union-attr]
    assert store.audit.outcome(mapping, "nope") is None


def test_merchant_note_candidates_follow_the_state_to_tell(
    store: StagingStore, mapping: str
) -> None:
    stage_sent(store, mapping, ["1", "2", "3"])
    audit = store.audit
    assert [(c.invoice_id, c.state) for c in audit.note_candidates(mapping, 10)] == [
        ("1", "CREATED"),
        ("2", "CREATED"),
        ("3", "CREATED"),
    ]
    assert [c.invoice_id for c in audit.note_candidates(mapping, 2, after_key="1")] == ["2", "3"]
    audit.record_writebacks(
        mapping,
        [
            Writeback("1", "merchant", "CREATED", "done", uuid=f"u-{mapping}-1"),
            Writeback("2", "merchant", "CREATED", "refused", uuid=f"u-{mapping}-2", detail="913"),
        ],
    )
    assert [c.invoice_id for c in audit.note_candidates(mapping, 10)] == ["3"]
    audit.record_outcomes(mapping, [AuditOutcome("2", "REJECTED", reason="dup")])
    found = audit.note_candidates(mapping, 10)
    assert [(c.invoice_id, c.state, c.reason) for c in found] == [
        ("2", "REJECTED", "dup"),
        ("3", "CREATED", None),
    ], "a refused write-back comes back once the state to tell changes"
    written = audit.writeback(mapping, "2", "merchant")
    assert written is not None
    assert (written.result, written.detail, written.updated_at is not None) == (
        "refused",
        "913",
        True,
    )


def test_crm_candidates_are_rejections_never_asked_for(store: StagingStore, mapping: str) -> None:
    audit = store.audit
    audit.record_outcomes(
        mapping,
        [
            AuditOutcome("1", "REJECTED", uuid="u1", reason="dup"),
            AuditOutcome("2", "APPROVED", uuid="u2"),
            AuditOutcome("3", "REJECTED", uuid="u3"),
        ],
    )
    assert [(c.invoice_id, c.reason) for c in audit.reject_candidates(mapping, 10)] == [
        ("1", "dup"),
        ("3", None),
    ]
    audit.record_writebacks(
        mapping, [Writeback("3", "crm", "REJECTED", "refused", uuid="u3", detail="POSTED")]
    )
    assert [c.invoice_id for c in audit.reject_candidates(mapping, 10)] == ["1"]
    audit.record_writebacks(
        mapping, [Writeback("3", "crm", "REJECTED", "done", uuid="u3", detail="REJECTED")]
    )
    assert audit.writeback(mapping, "3", "crm").result == "done"  # type: ignore[union-attr]


def test_invoices_are_found_by_uuid_and_by_key(store: StagingStore, mapping: str) -> None:
    other = f"{mapping}_b"
    stage_sent(store, mapping, ["1", "2"])
    stage_sent(store, other, ["2"])
    audit = store.audit
    assert audit.invoices_by_uuid([f"u-{mapping}-1", "unknown"]) == {
        f"u-{mapping}-1": [(mapping, "1")]
    }
    assert audit.mappings_of(["1", "2", "9"], [mapping, other]) == {
        "1": [mapping],
        "2": sorted([mapping, other]),
    }
