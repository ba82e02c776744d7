"""Sync runs against the sandbox over HTTP with SQLite staging: created, unchanged, updated, forced,
dry runs, the historical header, and the exact bytes that go on the wire."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa

from pipeline.appzen.client import AppZenClient
from pipeline.devkit.sample_erp import GenerationReport, touch
from pipeline.devkit.sandbox import SandboxServer
from pipeline.load.sync import SyncJob
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.tables import failures, invoices, runs
from tests.load.sync_helpers import (
    NAME,
    assert_counts_add_up,
    expected,
    money_scales,
    options,
    records,
    rejected_keys,
    requests_sent,
    run_sync,
    same_json,
)

Erp = tuple[str, GenerationReport]
TRAILING_ZERO = re.compile(rb'"amount":-?[0-9]+\.[0-9]0[,}]')
"""An amount such as 12.30: its scale must survive the trip (never 12.3)."""


def test_first_run_creates_every_valid_invoice(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, erp: Erp
) -> None:
    valid = expected(settings)
    dirty = set(erp[1].dirty_ids)
    summary = run_sync(options(), settings, store)

    assert summary.status == "succeeded"
    assert summary.fatal is None
    counts = summary.counts
    assert counts["created"] == counts["planned_create"] == len(valid)
    assert counts["failed_mapping"] + counts["failed_validation"] == len(dirty) > 0
    assert sandbox.state.response_counts() == {201: len(valid)}
    stored = sandbox.state.invoices()
    assert set(stored) == set(valid)
    for key, record in records(store, valid).items():
        assert record.state == "sent"
        assert record.appzen_status == "CREATED"
        assert record.uuid == stored[key].uuid
        assert record.last_http_status == 201
        assert record.acked_hash == valid[key].payload_hash == record.payload_hash
        assert record.acked_payload == valid[key].payload
        assert record.send_count == 1
        assert record.correlation_id
        assert record.claimed_by is None
        assert same_json(stored[key].payload, valid[key].payload)
    assert all(store.get_invoice(NAME, key) is None for key in dirty)
    stages = {
        f.failure.source_key: f.failure.stage for f in store.failures_for_run(summary.run_id or 0)
    }
    assert stages == dict.fromkeys(dirty, "mapping")
    run = store.get_run(summary.run_id or 0)
    assert run is not None
    assert run.status == "succeeded"
    assert run.counts == dict(counts)
    assert run.watermark == max(str(m.watermark) for m in valid.values())
    assert_counts_add_up(summary)


def test_rerun_over_unchanged_invoices_sends_nothing(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    run_sync(options(), settings, store)
    before = requests_sent(sandbox)

    full = run_sync(options(incremental=False), settings, store)
    incremental = run_sync(options(), settings, store)

    assert requests_sent(sandbox) == before == len(valid)
    assert full.counts["unchanged"] == len(valid)
    assert full.counts["requests"] == 0
    assert full.counts["planned_create"] == full.counts["planned_update"] == 0
    assert incremental.counts["extracted"] == 0
    assert incremental.status == "succeeded"
    assert all(r.send_count == 1 for r in records(store, valid).values())
    assert_counts_add_up(full)
    assert_counts_add_up(incremental)


def test_a_changed_invoice_is_sent_again_and_updated_under_the_same_uuid(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, erp: Erp
) -> None:
    run_sync(options(), settings, store)
    first = sandbox.state.invoices()
    touched = touch(erp[0], count=8, seed=3).document_nos
    valid = expected(settings)
    changed = touched & set(valid)
    assert changed

    summary = run_sync(options(), settings, store)

    assert summary.counts["planned_update"] == summary.counts["updated"] == len(changed)
    assert summary.counts["extracted"] == len(touched)  # incremental: only what changed
    assert sandbox.state.response_counts() == {201: len(valid), 200: len(changed)}
    stored = sandbox.state.invoices()
    for key, record in records(store, valid).items():
        assert stored[key].uuid == first[key].uuid == record.uuid
        assert stored[key].versions == (2 if key in changed else 1)
        assert same_json(stored[key].payload, valid[key].payload)
        assert record.state == "sent"
        assert record.acked_hash == valid[key].payload_hash
        assert record.appzen_status == ("UPDATED" if key in changed else "CREATED")
        assert record.resent_after_crash == 0
    assert_counts_add_up(summary)


def test_force_resends_everything_in_scope(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    run_sync(options(), settings, store)
    marks = sorted(str(m.watermark) for m in valid.values())
    until = marks[len(marks) // 2]
    in_scope = {key for key, m in valid.items() if str(m.watermark) <= until}

    summary = run_sync(options(force=True, incremental=False, until=until), settings, store)

    assert summary.counts["planned_update"] == summary.counts["updated"] == len(in_scope)
    assert summary.counts["unchanged"] == 0
    versions = {key: inv.versions for key, inv in sandbox.state.invoices().items()}
    assert versions == {key: 2 if key in in_scope else 1 for key in valid}
    assert_counts_add_up(summary)


def _staging_rows(store: StagingStore) -> tuple[list[object], ...]:
    with store.engine.connect() as conn:
        return tuple(
            [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key))]
            for table in (runs, invoices, failures)
        )


def test_dry_run_sends_nothing_writes_nothing_and_counts_the_plan(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, erp: Erp
) -> None:
    valid = expected(settings)
    plan = run_sync(options(dry_run=True), settings, store)
    assert _staging_rows(store) == ([], [], [])
    assert requests_sent(sandbox) == 0
    assert plan.run_id is None
    assert plan.counts["planned_create"] == len(valid)
    assert plan.counts["failed_mapping"] == len(rejected_keys(settings))
    assert_counts_add_up(plan)

    refused = valid[min(valid)].invoice.supplier_id
    sandbox.state.configure(unknown_suppliers=[refused])
    real = run_sync(options(), settings, store)
    assert real.counts["planned_create"] == plan.counts["planned_create"]
    bounced = {k for k, m in valid.items() if m.invoice.supplier_id == refused}
    changed = touch(erp[0], count=8, seed=3).document_nos & (set(valid) - bounced)
    valid = expected(settings)
    before, sent = _staging_rows(store), requests_sent(sandbox)

    plan = run_sync(options(dry_run=True, incremental=False), settings, store)

    assert _staging_rows(store) == before
    assert requests_sent(sandbox) == sent
    assert plan.counts["planned_update"] == len(changed)
    assert plan.counts["rejected_unchanged"] == len(bounced)
    assert plan.counts["unchanged"] == len(valid) - len(changed) - len(bounced)
    assert plan.status == "succeeded"
    assert plan.dry_run
    assert plan.as_dict()["dry_run"] is True
    assert_counts_add_up(plan)


def test_historical_header_comes_from_the_run(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    marks = sorted(str(m.watermark) for m in valid.values())
    until = marks[len(marks) // 3]
    old = {key for key, m in valid.items() if str(m.watermark) <= until}
    backfill = options(flow="backfill", historical=True, incremental=False, until=until)

    history = run_sync(backfill, settings, store)
    nightly = run_sync(options(flow="sync"), settings, store)

    assert history.counts["created"] == len(old)
    assert nightly.counts["created"] == len(valid) - len(old)
    assert nightly.counts["unchanged"] == len(old)  # no watermark yet: all extracted
    stored = sandbox.state.invoices()
    for key, record in records(store, valid).items():
        assert stored[key].historical == ((True,) if key in old else (False,))
        assert record.historical is (key in old)
    runs_by_id = {run.id: run for run in store.list_runs()}
    assert runs_by_id[history.run_id or 0].historical is True
    assert runs_by_id[nightly.run_id or 0].historical is False
    assert runs_by_id[history.run_id or 0].watermark is None  # only nightly runs move it


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, remembering every request body it sent."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_the_payload_sent_is_the_mapped_payload_byte_for_byte(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    transport = RecordingTransport()
    async with AppZenClient(settings, transport=transport) as client:
        summary = await SyncJob(options(), settings, store=store, client=client).run()

    assert summary.counts["created"] == len(valid)
    assert sorted(transport.bodies) == sorted(m.payload for m in valid.values())
    assert any(TRAILING_ZERO.search(m.payload) for m in valid.values())
    stored = sandbox.state.invoices()
    for key, mapped in valid.items():
        assert same_json(stored[key].payload, mapped.payload)
        assert money_scales(stored[key].payload["total_amount"]) == {-2}
        assert records(store, {key})[key].acked_payload == mapped.payload
