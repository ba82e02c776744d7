"""Retry failed: re-map from the source and resend only the invoices that failed."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Cancelled

from flows.common import artifact_key, flow_settings, log_summary, publish, run_progress
from flows.parameters import BlockName, MappingRef, RunId
from flows.tasks import batch_task
from pipeline.errors import RunStopped
from pipeline.jobs import retry as retry_job
from pipeline.jobs.store import open_store
from pipeline.runtime.stop import sigterm_stops_runs


@flow(name="retry-failed")
async def retry_failed(
    mapping: MappingRef = "mappings/sample_erp.yaml",
    run_id: RunId = None,
    credentials_block: BlockName = None,
) -> dict[str, object]:
    """Resend the invoices that failed (in run ``run_id``, or any still failed), re-mapped from
    the source so that fixed data is what goes out. SIGTERM (a cancel) stops the run cleanly
    (``cancelled``) and ends the flow run Cancelled."""
    settings = await flow_settings(credentials_block)
    store = open_store(settings)
    try:
        scope = retry_job.scope(store, Path(mapping), run_id)
        if not scope.keys:
            get_run_logger().info(f"{scope.name}: no failed invoices to retry")
            return {"mapping": scope.name, "status": "nothing to retry", "counts": {}}
        with run_progress(settings, total=len(scope.keys)) as progress:
            done = await sigterm_stops_runs(
                retry_job.run(settings, store, scope, per_batch=batch_task, on_progress=progress)
            )
        summary = log_summary(done)
        title = f"Retry of failed {scope.name} invoices"
        key = artifact_key("retry-failed", scope.name)
        await publish(title, key, [summary], store, reports_url=settings.appzen_reports_url)
    finally:
        store.close()
    if summary.cancelled:  # a returned state is the flow run's final state (Prefect)
        return Cancelled(message=f"retry-failed run {summary.run_id} {summary.fatal}")  # type: ignore[return-value]
    if summary.fatal:
        raise RunStopped(f"run {summary.run_id} stopped: {summary.fatal}")
    return summary.as_dict()
