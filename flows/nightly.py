"""Nightly sync: incremental extraction from the stored watermark (historical: false), then
status push-back."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import flow_settings
from flows.tasks import run_job, status_sync_task
from pipeline.errors import RunStopped
from pipeline.load.sync import SyncOptions
from pipeline.mapping.loader import load_mapping


@flow(name="nightly-sync", log_prints=False)
async def nightly_sync(
    mapping: str = "mappings/sample_erp.yaml",
    status_sync: bool = True,
    credentials_block: str | None = None,
) -> dict[str, object]:
    """Send what changed in the ERP since the last successful run, then push ERP statuses."""
    settings = await flow_settings(credentials_block)
    summary = await run_job(SyncOptions(Path(mapping), flow="sync"), settings)
    result: dict[str, object] = {"sync": summary.as_dict()}
    if summary.fatal:
        raise RunStopped(f"run {summary.run_id} stopped: {summary.fatal}")
    if status_sync:
        pushed = await status_sync_task(load_mapping(Path(mapping)).name, settings)
        result["status_sync"] = pushed.as_dict()
    return result
