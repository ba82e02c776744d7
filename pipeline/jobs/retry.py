"""The retry-failed job: re-map from the source and resend only the invoices that failed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.appzen.client import AppZenClient
from pipeline.jobs import sync
from pipeline.load.sync import SyncOptions
from pipeline.mapping.loader import load_mapping
from pipeline.runtime.ratelimit import RateLimiter
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary


@dataclass(frozen=True, slots=True)
class RetryScope:
    """The invoices of mapping ``name`` to resend: those that failed in run ``run_id``, or every
    one still failed when ``run_id`` is None. No ``keys``: nothing to retry (run nothing)."""

    mapping: Path
    name: str
    run_id: int | None
    keys: frozenset[str]

    def options(self) -> SyncOptions:
        """A full extraction limited to ``keys``, rejected invoices resent."""
        return SyncOptions(
            self.mapping,
            flow="retry_failed",
            retry_failed=True,
            incremental=False,
            only_keys=self.keys,
        )


def scope(store: StagingStore, mapping: Path, run_id: int | None = None) -> RetryScope:
    """What a retry of ``mapping`` resends: the failures of run ``run_id``; or, without one,
    every open failure of the ledger (mapping failures too, fixed or not, whether or not the
    fix moved the watermark column) and every invoice staging holds as refused or given up,
    less those dismissed."""
    name = load_mapping(mapping).name
    failed = store.failed_invoice_ids(name, run_id)
    if run_id is None:
        ledger = store.ledger
        open_keys = ledger.open_keys(name)
        failed = (failed - ledger.live_keys(name)) | open_keys
    return RetryScope(mapping, name, run_id, frozenset(failed))


async def run(
    settings: Settings,
    store: StagingStore,
    retry: RetryScope,
    *,
    client: AppZenClient | None = None,
    limiter: RateLimiter | None = None,
    on_progress: sync.Progress | None = None,
    per_batch: sync.BatchRunner | None = None,
) -> RunSummary:
    """Resend the invoices of ``retry`` as a ``retry_failed`` run, re-mapped from the source so
    that fixed data is what goes out (check ``retry.keys`` first: without any, the run would
    read the whole source to send nothing); the summary with its reports attached."""
    return await sync.run(
        settings,
        store,
        retry.options(),
        client=client,
        limiter=limiter,
        on_progress=on_progress,
        per_batch=per_batch,
    )
