"""Retry failed: re-map from the source and resend only the invoices that failed."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.common import artifact_key, flow_settings, open_store, publish
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
    """Resend the invoices that failed (in run ``run_id``, or any still failed), re-mapped from
    the source so that fixed data is what goes out."""
    settings = await flow_settings(credentials_block)
    name = load_mapping(Path(mapping)).name
    store = open_store(settings)
    try:
        keys = frozenset(store.failed_invoice_ids(name, run_id))
        if not keys:
            get_run_logger().info(f"{name}: no failed invoices to retry")
            return {"mapping": name, "status": "nothing to retry", "counts": {}}
        options = SyncOptions(
            Path(mapping), flow="retry_failed", retry_failed=True, incremental=False, only_keys=keys
        )
        summary = await run_job(options, settings, store)
        await publish(
            f"Retry of failed {name} invoices", artifact_key("retry-failed", name), [summary], store
        )
    finally:
        store.close()
    if summary.fatal:
        raise RunStopped(f"run {summary.run_id} stopped: {summary.fatal}")
    return summary.as_dict()
