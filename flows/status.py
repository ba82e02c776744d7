"""Status sync on its own schedule: push every ERP status that changed since it was last pushed."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.utilities.annotations import quote

from flows.common import artifact_key, flow_settings, open_store, publish
from flows.tasks import status_sync_task
from pipeline.errors import RunStopped
from pipeline.mapping.loader import load_mapping


@flow(name="status-sync")
async def status_sync(
    mapping: str = "mappings/sample_erp.yaml", credentials_block: str | None = None
) -> dict[str, object]:
    """POST /invoice/{uuid}/status-sync for each staged invoice whose ERP status changed."""
    settings = await flow_settings(credentials_block)
    name = load_mapping(Path(mapping)).name
    summary = await status_sync_task(name, quote(settings))
    store = open_store(settings)
    try:
        await publish(f"Status sync of {name}", artifact_key("status-sync", name), [summary], store)
    finally:
        store.close()
    if summary.fatal:
        raise RunStopped(f"status-sync run {summary.run_id} stopped: {summary.fatal}")
    return summary.as_dict()
