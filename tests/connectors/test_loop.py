"""The full loop over loopback HTTP: the sync posts the merchant platform's invoices to AppZen,
AppZen's audit rejects some, the write-back polls them, rejects the DRAFT ones in CRM.COM (not the
POSTED one: a failed row, not retried) and writes the uuid and state into each merchant note."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.crm import CrmState
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.report import write_reports
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.writeback import WritebackOptions, run_writeback
from tests.connectors.conftest import FAST, sync_merchant, write_connectors

DUPLICATE = {
    "rule_code": "duplicate_invoice_amount",
    "risk_message": "Same amount and supplier as 880105",
    "risk_results": {"risk_level": "HIGH"},
}
PRICE = {"rule_code": "price_variance", "risk_message": "12 % over", "risk_results": {}}


def _now() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


async def test_audit_rejections_reach_crm_and_the_merchant_notes(
    sandbox: SandboxServer,
    merchant: MerchantState,
    crm: CrmState,
    wb_settings: Settings,
    store: StagingStore,
    tmp_path: Path,
) -> None:
    synced = await sync_merchant(wb_settings, store)
    assert (synced.counts["created"], synced.counts["failed_mapping"]) == (9, 1)
    uuid = {key: record.uuid for key, record in sandbox.state.invoices().items()}
    crm.add_invoice("880100")
    crm.add_invoice("880101")
    crm.add_invoice("880102", "POSTED")
    sandbox.state.audit.set_outcome(uuid["880100"], "Rejected", [DUPLICATE])
    sandbox.state.audit.set_outcome(uuid["880101"], "Approved")
    sandbox.state.audit.set_outcome(uuid["880102"], "Rejected", [PRICE])
    options = WritebackOptions(write_connectors(tmp_path))

    summary = await run_writeback(wb_settings, store, options, policy=FAST, now=_now)

    assert (summary.status, summary.fatal) == ("succeeded", None)
    counts = summary.counts
    assert counts["outcomes_polled"] == 3
    assert (counts["crm_rejected"], counts["crm_not_draft"], counts["failed_crm"]) == (1, 1, 1)
    assert counts["merchant_noted"] == 9
    rejected = crm.invoice("reference_number", "880100")
    assert rejected is not None
    assert (rejected["life_cycle_state"], rejected["rejection_reason"]) == (
        "REJECTED",
        "Reject Due to Duplicate",
    )
    assert crm.invoice("reference_number", "880102")["life_cycle_state"] == "POSTED"  # type: ignore[index]
    notes = {key: merchant.invoice(int(key))["note"] for key in uuid}  # type: ignore[index]
    assert notes["880100"] == f"[AppZen {uuid['880100']} REJECTED: duplicate_invoice_amount]"
    assert notes["880101"] == f"Lieferung Filiale Köln [AppZen {uuid['880101']} APPROVED]"
    assert notes["880103"].endswith(f"[AppZen {uuid['880103']} CREATED]")
    crm_done = store.audit.writeback("merchant_api", "880100", "crm")
    assert crm_done is not None
    assert (crm_done.result, crm_done.detail) == ("done", "REJECTED")

    assert summary.run_id is not None
    failures = store.failures_for_run(summary.run_id)
    assert [(f.failure.source_key, f.failure.stage, f.failure.rule) for f in failures] == [
        ("880102", "crm", "crm_invalid_life_cycle_state")
    ]
    failure = failures[0].failure
    assert "is POSTED, not DRAFT" in failure.message
    assert failure.hint is not None
    assert "not retried" in failure.hint
    run = store.get_run(summary.run_id)
    assert run is not None
    assert run.flow == "writeback"
    assert run.watermark is not None
    paths = write_reports(run, failures, tmp_path / "reports")
    assert "CRM.COM: the invoice could not be rejected" in paths.html.read_text("utf-8")

    # The next run finds nothing new: no note rewritten, the POSTED invoice not tried again.
    posts, rejects = merchant.requests["POST /invoice"], crm.requests["reject"]
    again = await run_writeback(wb_settings, store, options, policy=FAST, now=_now)
    assert (merchant.requests["POST /invoice"], crm.requests["reject"]) == (posts, rejects)
    assert again.failed == 0
    assert again.counts["merchant_noted"] == 0
    assert again.counts["outcomes_polled"] == 3, "the overlap re-reads; stored again, unchanged"

    # The notes the write-back wrote are not a change to send to AppZen again.
    resync = await sync_merchant(wb_settings, store)
    assert resync.counts["unchanged"] == 9
    assert resync.counts["updated"] == 0


async def test_a_fatal_merchant_answer_stops_only_the_merchant(
    sandbox: SandboxServer,
    merchant: MerchantState,
    crm: CrmState,
    wb_settings: Settings,
    store: StagingStore,
    tmp_path: Path,
) -> None:
    await sync_merchant(wb_settings, store)
    uuid = sandbox.state.invoice("880100").uuid  # type: ignore[union-attr]
    sandbox.state.audit.set_outcome(uuid, "Rejected", [DUPLICATE])
    crm.add_invoice("880100")
    merchant.configure(denied=True)
    options = WritebackOptions(write_connectors(tmp_path))
    summary = await run_writeback(wb_settings, store, options, policy=FAST, now=_now)
    assert summary.status == "failed"
    assert summary.fatal is not None
    assert summary.fatal.startswith("merchant platform: Access Denied")
    assert summary.counts["crm_rejected"] == 1, "CRM.COM is still told"
    assert merchant.updates == []
    assert store.get_run(summary.run_id).status == "failed"  # type: ignore[arg-type, union-attr]
