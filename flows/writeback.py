"""Write-back on its own schedule: AppZen outcomes in (poll, or an exported file), and the
ERP-side systems told (merchant invoice notes, CRM.COM rejections of DRAFT invoices)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.common import artifact_key, flow_settings, log_summary, publish
from flows.parameters import BlockName, ConnectorsFile, OutcomesFile
from pipeline.errors import RunStopped
from pipeline.jobs import writeback as writeback_job
from pipeline.jobs.store import open_store
from pipeline.jobs.writeback import WritebackOptions
from pipeline.summary import RunSummary


@task(name="writeback", cache_policy=NO_CACHE)
async def writeback_task(options: Any, settings: Any) -> RunSummary:
    """One write-back pass (its calls are batched, rate-limited and retried by the pipeline);
    its failed-row report is written next to the others."""
    store = open_store(settings)
    try:
        return log_summary(await writeback_job.run(settings, store, options))
    finally:
        store.close()


@flow(name="writeback")
async def writeback(
    connectors: ConnectorsFile = "mappings/connectors.yaml",
    outcomes_file: OutcomesFile = None,
    poll: bool = True,
    credentials_block: BlockName = None,
) -> dict[str, object]:
    """Poll AppZen's audit outcomes (and import ``outcomes_file``), then write the AppZen uuid
    and state into merchant notes and reject in CRM.COM what AppZen rejected."""
    settings = await flow_settings(credentials_block)
    options = WritebackOptions(
        Path(connectors), outcomes_file=Path(outcomes_file) if outcomes_file else None, poll=poll
    )
    summary = await writeback_task(quote(options), quote(settings))
    store = open_store(settings)
    try:
        title = f"Write-back ({summary.mapping})"
        key = artifact_key("writeback", summary.mapping)
        await publish(title, key, [summary], store, reports_url=settings.appzen_reports_url)
    finally:
        store.close()
    if summary.fatal:
        raise RunStopped(f"writeback run {summary.run_id} stopped: {summary.fatal}")
    return summary.as_dict()
