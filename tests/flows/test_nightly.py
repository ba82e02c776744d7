"""The nightly flow: what changed goes out with ``historical: false``, then the ERP statuses."""

from __future__ import annotations

from typing import Any

import pytest

from flows.nightly import nightly_sync
from pipeline.devkit.sample_erp import GenerationReport, touch
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from tests.flows.helpers import MAPPING, flow_run_id, logs_of, updated_at

pytestmark = pytest.mark.prefect


async def test_nightly_sends_new_invoices_then_pushes_their_statuses(
    flow_env: Settings, sandbox: SandboxServer, erp: tuple[str, GenerationReport]
) -> None:
    url, report = erp
    clean = set(updated_at(url)) - set(report.dirty_ids)

    result = await nightly_sync(mapping=MAPPING)

    invoices = sandbox.state.invoices()
    assert set(invoices) == clean
    assert {record.historical for record in invoices.values()} == {(False,)}
    pushes = sandbox.state.pushes()
    assert sorted(p.invoice_id for p in pushes) == sorted(clean)
    errors = {p.invoice_id for p in pushes if p.body["appzen_invoice_state"] == "ERROR"}
    assert errors == set(report.erp_errors)
    sync, status = result["sync"], result["status_sync"]
    assert isinstance(sync, dict)
    assert isinstance(status, dict)
    assert sync["counts"]["created"] == len(clean)
    counts = sync["counts"]
    assert counts.get("failed_mapping", 0) + counts.get("failed_validation", 0) == len(report.dirty)
    assert status["counts"]["requests"] == len(clean)


async def test_the_next_night_sends_only_what_changed(
    flow_env: Settings, sandbox: SandboxServer, erp: tuple[str, GenerationReport]
) -> None:
    url, report = erp
    await nightly_sync(mapping=MAPPING)
    pushed_before = len(sandbox.state.pushes())
    touched = touch(url, count=6)
    changed = touched.document_nos - set(report.dirty_ids)
    new_status = {t.document_no for t in touched.touched if t.change == "status"} & changed

    result = await nightly_sync(mapping=MAPPING)

    invoices = sandbox.state.invoices()
    assert {k for k, record in invoices.items() if record.versions == 2} == changed
    assert all(invoices[k].historical == (False, False) for k in changed)
    assert {p.invoice_id for p in sandbox.state.pushes()[pushed_before:]} == new_status
    sync = result["sync"]
    assert isinstance(sync, dict)
    assert sync["counts"]["extracted"] == len(touched.document_nos)
    assert sync["counts"]["updated"] == len(changed)


async def test_the_flow_run_log_shows_progress_lines_that_end_with_the_counts(
    flow_env: Settings,
    sandbox: SandboxServer,
    erp: tuple[str, GenerationReport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Off a terminal, what ops read is the flow-run log: progress lines at PROGRESS_INTERVAL
    for the sync and for the status-sync, each run's last one (``· done``) with its counts."""
    monkeypatch.setenv("PROGRESS_INTERVAL", "0.05")

    state = await nightly_sync(mapping=MAPPING, return_state=True)
    result: Any = await state.aresult()

    messages = [log.message for log in await logs_of(flow_run_id(state))]
    sync, status = result["sync"], result["status_sync"]
    head = f"sync run {sync['run_id']} (sample_erp): "
    progress = [m for m in messages if m.startswith(head + "extracted ")]
    assert len(progress) >= 2, messages  # at least one at the interval, and the final one
    counts = sync["counts"]
    failed = sum(v for k, v in counts.items() if k.startswith("failed_"))
    assert progress[-1].startswith(
        f"{head}extracted {counts['extracted']:,} · sent {counts['created']:,} · unchanged 0 · "
        f"failed {failed:,} · "
    )
    assert progress[-1].endswith(" · done")
    sent = sum(status["counts"].get(k, 0) for k in ("pushed", "pushed_error"))
    pushed = f"status_sync run {status['run_id']} (sample_erp): sent {sent:,} · failed 0 · "
    assert any(m.startswith(pushed) and m.endswith(" · done") for m in messages), messages
