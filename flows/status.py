"""Status sync on its own schedule: read the ERP's current statuses (the mapping's status read) and
push every status that changed since it was last pushed."""

from __future__ import annotations

from prefect import flow
from prefect.states import Cancelled
from prefect.utilities.annotations import quote

from flows.common import artifact_key, flow_settings, publish
from flows.parameters import BlockName, MappingRef
from flows.tasks import status_sync_task
from pipeline.errors import RunStopped
from pipeline.jobs.store import open_store
from pipeline.runtime.stop import sigterm_stops_runs


@flow(name="status-sync")
async def status_sync(
    mapping: MappingRef = "mappings/sample_erp.yaml", credentials_block: BlockName = None
) -> dict[str, object]:
    """Read the mapping's ERP statuses (``status.source``), then POST /invoice/{uuid}/status-sync
    for each staged invoice whose ERP status changed. SIGTERM (a cancel) stops the pushes
    cleanly (``cancelled``) and ends the flow run Cancelled."""
    settings = await flow_settings(credentials_block)
    summary = await sigterm_stops_runs(status_sync_task(mapping, quote(settings)))
    store = open_store(settings)
    try:
        title = f"Status sync of {summary.mapping}"
        key = artifact_key("status-sync", summary.mapping)
        await publish(title, key, [summary], store, reports_url=settings.appzen_reports_url)
    finally:
        store.close()
    if summary.cancelled:  # a returned state is the flow run's final state (Prefect)
        return Cancelled(message=f"status-sync run {summary.run_id} {summary.fatal}")  # type: ignore[return-value]
    if summary.fatal:
        raise RunStopped(f"status-sync run {summary.run_id} stopped: {summary.fatal}")
    return summary.as_dict()
