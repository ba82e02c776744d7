"""Transient failures against the sandbox: 429, 5xx, timeouts and dropped connections are retried
until acknowledged; an exhausted retry budget leaves the invoice open for the next run; the rate
limiter settles near the quota it finds."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.load.sync import SyncJob
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import (
    assert_counts_add_up,
    expected,
    options,
    quick_sync,
    records,
    requests_sent,
    run_sync,
    same_json,
    settle,
    tuned,
)


def assert_all_acknowledged(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    """Every valid invoice is stored in the sandbox once, and staging says so, uuid for uuid."""
    valid = expected(settings)
    stored = sandbox.state.invoices()
    assert set(stored) == set(valid)
    for key, record in records(store, valid).items():
        assert record.state == "sent"
        assert record.uuid == stored[key].uuid
        assert same_json(stored[key].payload, valid[key].payload)
    assert store.count_by_state("sample_erp") == {"sent": len(valid)}


def test_429_answers_are_retried_until_acknowledged(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    sandbox.state.configure(rate=10)  # low enough that even a busy machine sends faster
    fast = tuned(settings, appzen_rate_limit=80.0, appzen_retry_attempts=10)

    summary = run_sync(options(), fast, store)

    assert sandbox.state.response_counts().get(429, 0) > 0
    assert summary.counts["retries"] >= sandbox.state.response_counts()[429]
    assert summary.counts["created"] == len(expected(settings))
    assert summary.counts["requests"] == requests_sent(sandbox)
    assert_all_acknowledged(sandbox, settings, store)
    assert_counts_add_up(summary)


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"fail_rate": 0.3}, id="5xx"),
        pytest.param({"drop_rate": 0.3}, id="dropped"),
        pytest.param({"latency_spike_rate": 0.2, "latency_spike_ms": 800.0}, id="timeout"),
    ],
)
def test_transient_failures_are_retried_until_acknowledged(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, knobs: dict[str, float]
) -> None:
    sandbox.state.configure(seed=7, **knobs)
    patient = tuned(settings, appzen_retry_attempts=10, appzen_read_timeout=0.3)

    summary = quick_sync(options(), patient, store)
    settle(sandbox)

    assert summary.status == "succeeded"
    assert summary.counts["retries"] > 0
    assert summary.counts["failed_retries"] == 0
    assert summary.counts["requests"] == requests_sent(sandbox)
    if "drop_rate" in knobs:
        assert sandbox.state.dropped() > 0
    assert_all_acknowledged(sandbox, settings, store)
    assert_counts_add_up(summary)


def test_answers_lost_after_appzen_stored_the_invoice_are_resent_as_updates(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    sandbox.state.configure(seed=3, commit_then_drop_rate=0.2, commit_then_fail_rate=0.1)
    patient = tuned(settings, appzen_retry_attempts=10)

    summary = quick_sync(options(), patient, store)

    stored = sandbox.state.invoices()
    twice = {key for key, invoice in stored.items() if invoice.versions > 1}
    assert twice
    assert summary.counts["resent_after_lost_answer"] == len(twice)
    assert summary.counts["created"] + summary.counts["updated"] == len(stored)
    for key, record in records(store, stored).items():
        assert record.resent_after_crash == 0  # a lost answer in a live run is no crash (#14)
        assert record.appzen_status == ("UPDATED" if key in twice else "CREATED")
    assert_all_acknowledged(sandbox, settings, store)
    assert_counts_add_up(summary)


def test_an_invoice_that_exhausts_its_retries_is_failed_retryable_and_sent_next_run(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    broken = sorted(valid)[len(valid) // 2]  # AppZen fails on this one while it takes the others
    sandbox.state.configure(failing_invoices=[broken])
    brief = tuned(settings, appzen_retry_attempts=2)

    failed = quick_sync(options(), brief, store)

    assert failed.status == "succeeded"
    assert not failed.outage, "one invoice failing while AppZen answers the others is no outage"
    assert failed.counts["failed_retries"] == 1
    assert failed.counts["created"] == len(valid) - 1
    assert sandbox.state.response_counts() == {201: len(valid) - 1, 500: 2}
    assert store.count_by_state("sample_erp") == {"sent": len(valid) - 1, "failed_retryable": 1}
    recorded = [f.failure for f in store.failures_for_run(failed.run_id or 0)]
    (stored,) = [f for f in recorded if f.source_key in valid]
    assert stored.source_key == broken
    assert stored.stage == "retries_exhausted"
    assert stored.attempts == 2
    assert stored.rule == "retries_exhausted:ServerError"
    assert stored.http_status == 500
    assert stored.correlation_id
    assert stored.error_code
    assert "gave up after 2 attempt(s)" in stored.message
    assert store.failed_invoice_ids("sample_erp") & set(valid) == {broken}

    sandbox.state.configure(failing_invoices=[])
    again = quick_sync(options(), brief, store)

    assert again.counts["created"] == 1
    assert_all_acknowledged(sandbox, settings, store)
    assert_counts_add_up(failed)
    assert_counts_add_up(again)


def test_the_watermark_stops_before_the_first_invoice_still_open(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    marks = {key: str(m.watermark) for key, m in valid.items()}
    sandbox.state.configure(fail_rate=0.5, seed=11)
    once = tuned(settings, appzen_retry_attempts=1)

    first = run_sync(options(), once, store)

    open_keys = {k for k, r in records(store, valid).items() if r.state == "failed_retryable"}
    assert 0 < len(open_keys) < len(valid)
    first_open = min(marks[key] for key in open_keys)
    done_below = [mark for key, mark in marks.items() if mark < first_open]
    # Never past the first invoice still open; at most the largest finished mark below it (less
    # when a later batch brought an older open invoice: the watermark is conservative, the next
    # run re-reads more, never less; which invoices fail depends on the order requests arrive).
    assert first.watermark is None or first.watermark < first_open
    assert first.watermark is None or first.watermark <= max(done_below)
    assert first.counts["failed_retries"] == len(open_keys)

    sandbox.state.configure(fail_rate=0.0)
    before = requests_sent(sandbox)
    second = run_sync(options(), once, store)

    assert requests_sent(sandbox) - before == len(open_keys)
    assert second.counts["planned_create"] == len(open_keys)
    assert second.watermark == max(marks.values())
    assert_all_acknowledged(sandbox, settings, store)
    third = run_sync(options(), once, store)
    assert third.counts["extracted"] == 0


async def test_the_limiter_settles_near_the_quota_it_finds(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, tmp_path: Path
) -> None:
    quota = 20.0  # low enough that even a busy machine sends faster: the test needs 429s
    url = f"sqlite:///{tmp_path / 'big_erp.db'}"
    generate(url, invoices=220, seed=9)
    sandbox.state.configure(rate=quota)
    eager = tuned(
        settings,
        erp_database_url=SecretStr(url),
        appzen_rate_limit=2 * quota,
        appzen_retry_attempts=10,
        batch_size=50,
    )
    job = SyncJob(options(), eager, store=store)

    summary = await job.run()

    assert summary.counts["failed_retries"] == 0
    assert_all_acknowledged(sandbox, eager, store)
    throttled = sandbox.state.response_counts().get(429, 0)
    assert 0 < throttled <= 0.05 * summary.counts["created"]
    # Started at 2Q, it came down. The sandbox banks a second of quota, so between 429s the
    # limiter probes up to ~1.6Q before the bucket runs dry again: a loose bound, not a timing.
    assert 0.5 * quota <= job.dispatcher.limiter.current_rate <= 1.8 * quota
