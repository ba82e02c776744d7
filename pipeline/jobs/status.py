"""The status-sync job: read the mapping's current ERP statuses (its status read, if it declares
one) and push every change to AppZen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.appzen.client import AppZenClient
from pipeline.extract.base import SourceError
from pipeline.jobs.reports import attach_reports
from pipeline.mapping.loader import load_mapping
from pipeline.redact import register_settings
from pipeline.runtime.dispatch import Dispatcher
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.status.read import StatusReader, open_status_reader
from pipeline.summary import RunSummary

Progress = Callable[[RunSummary], None]


@dataclass(frozen=True, slots=True)
class StatusOptions:
    """Which mapping's staged invoices to push; a dry run plans and sends nothing."""

    mapping: Path
    dry_run: bool = False


async def run(
    settings: Settings,
    store: StagingStore,
    options: StatusOptions,
    *,
    client: AppZenClient | None = None,
    dispatcher: Dispatcher | None = None,
    on_progress: Progress | None = None,
) -> RunSummary:
    """Read the mapping's current ERP statuses (with ``status.source``) and push every pending
    change as one ``status_sync`` run; the summary with its failed-row reports attached.
    ``dispatcher`` shares a rate limit and retry policy with other work (default: one built from
    the settings). ``on_progress`` is called once at the start with a summary whose counts grow
    as the pushes are recorded (a progress line). A status read whose columns do not fit the
    mapping stops the job before a run is recorded; one whose source cannot be read (the ERP
    down, a query error) stops the run before any push, recorded ``failed`` with the reason
    (both exit code 2)."""
    register_settings(settings)
    spec = load_mapping(options.mapping)
    unreadable: SourceError | None = None
    reader: StatusReader | None = None
    try:
        reader = await asyncio.to_thread(open_status_reader, spec, settings)
    except SourceError as error:
        unreadable = error

    def open_reader() -> StatusReader | None:
        if unreadable is not None:
            raise unreadable  # recorded by the run, as a read failing later is
        return reader

    summary = await run_status_sync(
        settings,
        store,
        spec.name,
        dry_run=options.dry_run,
        client=client,
        dispatcher=dispatcher,
        open_reader=open_reader,
        on_progress=on_progress,
    )
    return attach_reports(store, settings, summary)
