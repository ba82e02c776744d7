"""Nightly sync: incremental extraction from the stored watermark (historical: false), then
status push-back; one summary and one failed-rows table as artifacts (``nightly-<mapping>``)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.states import Cancelled
from prefect.utilities.annotations import quote

from flows.automations import emit_failed_invoices
from flows.common import artifact_key, flow_settings, log_summary, publish, run_progress
from flows.parameters import BlockName, MappingRef
from flows.tasks import batch_task, status_sync_task
from pipeline.errors import RunStopped
from pipeline.jobs import sync as sync_job
from pipeline.jobs.store import open_store
from pipeline.jobs.sync import SyncOptions
from pipeline.runtime.stop import sigterm_stops_runs
from pipeline.summary import RunSummary


@flow(name="nightly-sync", log_prints=False)
async def nightly_sync(
    mapping: MappingRef = "mappings/sample_erp.yaml",
    status_sync: bool = True,
    credentials_block: BlockName = None,
) -> dict[str, object]:
    """Send what changed in the ERP since the last successful run, then push ERP statuses.
    SIGTERM (a cancel) stops the sync or the status push cleanly (``cancelled``) and ends the
    flow run Cancelled."""
    settings = await flow_settings(credentials_block)
    store = open_store(settings)
    try:
        options = SyncOptions(Path(mapping), flow="sync")
        with run_progress(settings) as progress:
            summary = await sigterm_stops_runs(
                sync_job.run(settings, store, options, per_batch=batch_task, on_progress=progress)
            )
        summaries: list[RunSummary] = [log_summary(summary)]
        if status_sync and not summary.fatal:
            pushed = await sigterm_stops_runs(status_sync_task(mapping, quote(settings)))
            summaries.append(pushed)
        key = artifact_key("nightly", summary.mapping)
        title = f"Nightly sync of {summary.mapping}"
        await publish(title, key, summaries, store, reports_url=settings.appzen_reports_url)
    finally:
        store.close()
    emit_failed_invoices(summaries)  # the nightly alert (flows/automations.py) hears of them
    for done in summaries:
        if done.cancelled:
            # A returned state is the flow run's final state (Prefect): Cancelled, not Failed.
            name = done.flow.replace("_", "-")
            return Cancelled(message=f"{name} run {done.run_id} {done.fatal}")  # type: ignore[return-value]
    for done in summaries:
        if done.fatal:
            raise RunStopped(f"{done.flow} run {done.run_id} stopped: {done.fatal}")
    return {done.flow: done.as_dict() for done in summaries}
