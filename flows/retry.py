"""Retry failed: re-map from the source and resend only the invoices that failed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prefect import flow

from flows.common import flow_settings, open_store
from flows.tasks import run_job
from pipeline.errors import RunStopped
from pipeline.load.sync import SyncOptions
from pipeline.mapping.loader import load_mapping


@flow(name="retry-failed")
async def retry_failed(
    mapping: str = "mappings/sample_erp.yaml",
    run_id: int | None = None,
    credentials_block: str | None = None,
) -> dict[str, object]:
    """Resend the invoices that failed (in run ``run_id``, or any still failed)."""
    settings = await flow_settings(credentials_block)
    store = open_store(settings)
    try:
        keys = store.failed_invoice_ids(load_mapping(Path(mapping)).name, run_id)
    finally:
        store.close()
    options = SyncOptions(Path(mapping))
    options = replace(
        options,
        flow="retry_failed",
        retry_failed=True,
        incremental=False,
        only_keys=frozenset(keys),
    )
    summary = await run_job(options, settings)
    if summary.fatal:
        raise RunStopped(f"run {summary.run_id} stopped: {summary.fatal}")
    return summary.as_dict()
