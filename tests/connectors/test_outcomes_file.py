"""An exported outcomes CSV instead of (or with) the poll: rows by invoice_id or uuid; rows that
cannot be used are failed rows naming file:row and the fix."""

from __future__ import annotations

from pathlib import Path

from pipeline.appzen.models import AuditSummary, SearchHit
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.crm import CrmState
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.writeback import WritebackOptions, run_writeback
from pipeline.writeback.outcomes import from_audit, outcome_state, read_outcomes_file
from tests.connectors.conftest import FAST, sync_merchant, write_connectors


def test_states_are_read_in_appzens_and_exports_spellings() -> None:
    assert [outcome_state(s) for s in ("Rejected", "APPROVED", " processed ", "open", None)] == [
        "REJECTED",
        "APPROVED",
        "APPROVED",
        None,
        None,
    ]


def test_an_undecided_audit_is_no_outcome() -> None:
    hit = SearchHit.model_validate({"appzen-uuid": "u", "appzen-invoice-status": "PROCESSED"})
    assert from_audit("1", hit, AuditSummary(status="In Progress")) is None
    rejected = SearchHit.model_validate({"appzen-uuid": "u", "appzen-invoice-status": "REJECTED"})
    outcome = from_audit("1", rejected, AuditSummary())
    assert outcome is not None
    assert (outcome.outcome, outcome.reason) == ("REJECTED", None)


def test_unusable_rows_are_failed_rows_with_their_location(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "invoice_id,uuid,state,reason\n1,,REJECTED,dup\n,,REJECTED,\n2,,maybe,\n", "utf-8"
    )
    rows, failures = read_outcomes_file(path)
    assert [(r.invoice_id, r.outcome, r.reason) for r in rows] == [("1", "REJECTED", "dup")]
    assert [(f.source_location, f.rule, f.source_column) for f in failures] == [
        (f"{path}:3", "outcomes_file:key", "invoice_id"),
        (f"{path}:4", "outcomes_file:state", "state"),
    ]
    assert failures[1].value == "maybe"


async def test_a_file_drives_the_write_back_without_polling(
    sandbox: SandboxServer,
    merchant: MerchantState,
    crm: CrmState,
    wb_settings: Settings,
    store: StagingStore,
    tmp_path: Path,
) -> None:
    await sync_merchant(wb_settings, store)
    uuid = sandbox.state.invoice("880104").uuid  # type: ignore[union-attr]
    crm.add_invoice("880103")
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "invoice_id,uuid,state,reason\n"
        "880103,,REJECTED,DUPLICATE_INVOICE_AMOUNT\n"
        f",{uuid},Approved,\n"
        "999999,,REJECTED,\n",
        "utf-8",
    )
    options = WritebackOptions(write_connectors(tmp_path), outcomes_file=path, poll=False)
    summary = await run_writeback(wb_settings, store, options, policy=FAST)
    assert summary.counts["outcomes_imported"] == 2
    assert summary.counts["outcomes_polled"] == 0
    rejected = store.audit.outcome("merchant_api", "880103")
    assert rejected is not None
    assert (rejected.outcome, rejected.source, rejected.reason) == (
        "REJECTED",
        "file",
        "DUPLICATE_INVOICE_AMOUNT",
    )
    approved = store.audit.outcome("merchant_api", "880104")
    assert approved is not None
    assert approved.outcome == "APPROVED"
    assert crm.invoice("reference_number", "880103")["rejection_reason"] == (  # type: ignore[index]
        "Reject Due to Duplicate"
    ), "the reason map is case-insensitive"
    assert summary.run_id is not None
    failures = [s.failure for s in store.failures_for_run(summary.run_id)]
    assert [(f.source_location, f.rule) for f in failures] == [
        (f"{path}:4", "outcomes_file:unknown_invoice")
    ]
    assert summary.counts["failed_audit"] == 1
    assert "999999" in failures[0].message
    run = store.get_run(summary.run_id)
    assert run is not None
    assert run.watermark is None, "the poll did not run: no watermark was invented"
