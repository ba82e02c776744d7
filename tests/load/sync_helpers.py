"""Helpers for the sync integration tests: options, the ERP's expected invoices, sandbox checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.wire import dumps_exact, loads_exact
from pipeline.jobs import retry as retry_job
from pipeline.jobs import sync as sync_job
from pipeline.jobs.preview import mapped_results
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.mapping.engine import MappedInvoice, RejectedInvoice
from pipeline.mapping.loader import load_mapping
from pipeline.runtime.retry import RetryPolicy
from pipeline.settings import Settings
from pipeline.staging import InvoiceRecord, StagingStore
from pipeline.summary import RunSummary

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "sample_erp.yaml"
NAME = "sample_erp"


def options(**changes: Any) -> SyncOptions:
    """Options of a nightly run of the sample ERP mapping, with ``changes``."""
    return SyncOptions(MAPPING, **changes)


def run_sync(options: SyncOptions, settings: Settings, store: StagingStore) -> RunSummary:
    """Run ``options`` through the job API, as the CLI does (reports attached)."""
    return asyncio.run(sync_job.run(settings, store, options))


def retry_all_failed(settings: Settings, store: StagingStore) -> RunSummary:
    """Resend every still-failed invoice of the mapping through the job API (retry-failed)."""
    return asyncio.run(retry_job.run(settings, store, retry_job.scope(store, MAPPING)))


def quick_sync(options: SyncOptions, settings: Settings, store: StagingStore) -> RunSummary:
    """Run a job like :func:`run_sync`, with short backoff between retries (Retry-After still
    honoured): a test of many retries takes a second, not half a minute."""
    policy = RetryPolicy(settings.appzen_retry_attempts, base_delay=0.01, max_delay=0.05)
    return asyncio.run(SyncJob(options, settings, store=store, retry_policy=policy).run())


def expected(settings: Settings) -> dict[str, MappedInvoice]:
    """Every invoice of the ERP the mapping accepts, by key, as the pipeline maps it now."""
    spec = load_mapping(MAPPING)
    return {r.key: r for r in mapped_results(spec, settings) if isinstance(r, MappedInvoice)}


def rejected_keys(settings: Settings) -> set[str]:
    """The ERP invoices the mapping refuses."""
    spec = load_mapping(MAPPING)
    results = mapped_results(spec, settings)
    return {r.key for r in results if isinstance(r, RejectedInvoice) and r.key is not None}


def requests_sent(sandbox: SandboxServer) -> int:
    """Every AppZen request the sandbox answered or dropped."""
    return sum(sandbox.state.response_counts().values()) + sandbox.state.dropped()


def in_flight(sandbox: SandboxServer) -> int:
    """Requests admitted by the sandbox that have not been answered or dropped yet."""
    state = sandbox.state
    counts = state.response_counts()
    finished = sum(counts.values()) - counts.get(429, 0) + state.dropped()
    return len(state.accepted_times()) - finished


def poll(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait until ``condition()`` holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.01)


def settle(sandbox: SandboxServer, seconds: float = 10.0) -> None:
    """Wait until the sandbox has finished every request it admitted (no late writes)."""
    poll(lambda: in_flight(sandbox) <= 0, seconds, "the sandbox finishing its requests")


def same_json(stored: dict[str, Any], payload: bytes) -> bool:
    """The sandbox's stored invoice is ``payload``, numbers with their scale included."""
    return dumps_exact(stored) == dumps_exact(loads_exact(payload))


def records(store: StagingStore, keys: set[str] | dict[str, Any]) -> dict[str, InvoiceRecord]:
    """The staged invoices of ``keys`` (each must exist)."""
    found = {key: store.get_invoice(NAME, key) for key in keys}
    missing = sorted(key for key, record in found.items() if record is None)
    assert not missing, f"not staged: {missing[:5]}"
    return {key: record for key, record in found.items() if record is not None}


def assert_counts_add_up(summary: RunSummary) -> None:
    """extracted = mapped + failed in mapping; mapped = every decision; sends = every outcome."""
    counts = summary.as_dict()["counts"]
    assert isinstance(counts, dict)
    c: dict[str, int] = {key: int(value) for key, value in counts.items()}

    def total(*keys: str) -> int:
        return sum(c.get(key, 0) for key in keys)

    assert c.get("extracted", 0) == total("mapped", "failed_mapping", "failed_validation"), c
    decided = total("planned_create", "planned_update", "unchanged", "rejected_unchanged", "busy")
    assert c.get("mapped", 0) == decided, c
    if summary.dry_run:
        assert total("created", "updated", "failed_appzen", "failed_retries", "requests") == 0, c
        return
    answered = total("created", "updated", "failed_appzen", "failed_retries", "left_pending")
    assert total("planned_create", "planned_update", "recreate_resent") == answered, c
    if summary.fatal is None:
        assert c.get("requests", 0) == answered + c.get("retries", 0), c
    assert summary.as_dict()["failed"] == total(
        "failed_mapping", "failed_validation", "failed_appzen", "failed_retries"
    )


def money_scales(payload: Any) -> set[int]:
    """The decimal exponents of every non-integer number in a stored payload (-2 = cents)."""
    if isinstance(payload, dict):
        return set().union(*(money_scales(v) for v in payload.values()), set())
    if isinstance(payload, list):
        return set().union(*(money_scales(v) for v in payload), set())
    if isinstance(payload, Decimal):
        exponent = payload.as_tuple().exponent
        return {exponent} if isinstance(exponent, int) else set()
    return set()


def tuned(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with some fields changed (no validation: pass the field's type)."""
    return settings.model_copy(update=changes)
