"""Merchant notes page by page: the merchant's own text kept, a note already right not written
again, invoices the platform refuses (not found, 913, not a merchant id) reported once."""

from __future__ import annotations

from pipeline.connectors.merchant import (
    MerchantClient,
    MerchantCredentials,
    MerchantEndpoint,
    with_appzen_note,
)
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.staging import StagingStore
from pipeline.writeback.targets import NoteWriter
from tests.connectors.conftest import FAST, stage_sent
from tests.support.clock import FakeClock

MAPPING = "merchant_api"


def _dispatcher() -> Dispatcher:
    clock = FakeClock()
    return Dispatcher(
        limiter=AdaptiveRateLimiter(500, clock=clock), policy=FAST, clock=clock, concurrency=4
    )


async def test_notes_are_written_once_and_refusals_reported_once(
    merchant: MerchantState,
    store: StagingStore,
    endpoint: MerchantEndpoint,
    credentials: MerchantCredentials,
) -> None:
    stage_sent(store, MAPPING, ["880100", "880101", "880102", "999999", "ABC"])
    already = with_appzen_note("", f"u-{MAPPING}-880100", "CREATED")
    merchant.seed([{**merchant.invoice(880100), "note": already}])  # type: ignore[dict-item]
    merchant.configure(fail_invoices={880102: 913})
    async with MerchantClient(endpoint, credentials) as client:
        first = await NoteWriter(store.audit, client, _dispatcher(), MAPPING, 2).run(page=2)
        second = await NoteWriter(store.audit, client, _dispatcher(), MAPPING, 2).run()

    assert first.fatal is None
    counts = first.counts
    assert (counts["merchant_noted"], counts["merchant_unchanged"]) == (1, 1)
    assert counts["failed_merchant"] == 3
    assert {(f.source_key, f.rule) for f in first.failures} == {
        ("880102", "merchant_913"),
        ("999999", "merchant_not_found"),
        ("ABC", "merchant_id"),
    }
    assert merchant.invoice(880101)["note"] == (  # type: ignore[index]
        f"Lieferung Filiale Köln [AppZen u-{MAPPING}-880101 CREATED]"
    )
    assert merchant.updates == [(880101, merchant.invoice(880101)["note"])]  # type: ignore[index]
    assert (second.counts["merchant_noted"], second.failures) == (0, []), "nothing twice"
    refused = store.audit.writeback(MAPPING, "880102", "merchant")
    assert refused is not None
    assert (refused.result, refused.detail) == ("refused", "913")


async def test_a_lookup_that_keeps_failing_is_retried_next_run(
    merchant: MerchantState,
    store: StagingStore,
    endpoint: MerchantEndpoint,
    credentials: MerchantCredentials,
) -> None:
    stage_sent(store, MAPPING, ["880100"])
    async with MerchantClient(endpoint, credentials) as client:
        await client.list_invoices()
        merchant.configure(fail_next=[899, 899, 899])
        first = await NoteWriter(store.audit, client, _dispatcher(), MAPPING, 50).run()
        assert store.audit.writeback(MAPPING, "880100", "merchant") is None, "nothing final"
        second = await NoteWriter(store.audit, client, _dispatcher(), MAPPING, 50).run()
    assert [(f.stage, f.rule) for f in first.failures] == [
        ("retries_exhausted", "retries_exhausted:merchant")
    ]
    assert second.counts["merchant_noted"] == 1
