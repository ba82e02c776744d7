"""Status sync on its own schedule: push every ERP status that changed since it was last pushed."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import flow_settings
from flows.tasks import status_sync_task
from pipeline.errors import RunStopped
from pipeline.mapping.loader import load_mapping


@flow(name="status-sync")
async def status_sync(
    mapping: str = "mappings/sample_erp.yaml", credentials_block: str | None = None
) -> dict[str, object]:
    """POST /invoice/{uuid}/status-sync for each staged invoice whose ERP status changed."""
    settings = await flow_settings(credentials_block)
    summary = await status_sync_task(load_mapping(Path(mapping)).name, settings)
    if summary.fatal:
        raise RunStopped(f"status-sync stopped: {summary.fatal}")
    return summary.as_dict()
