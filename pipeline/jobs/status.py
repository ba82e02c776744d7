"""The status-sync job: push every ERP status change of a mapping to AppZen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.appzen.client import AppZenClient
from pipeline.jobs.reports import attach_reports
from pipeline.mapping.loader import load_mapping
from pipeline.redact import register_settings
from pipeline.runtime.dispatch import Dispatcher
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary


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
) -> RunSummary:
    """Push every pending ERP status change of the mapping as one ``status_sync`` run; the
    summary with its failed-row reports attached. ``dispatcher`` shares a rate limit and retry
    policy with other work (default: one built from the settings)."""
    register_settings(settings)
    name = load_mapping(options.mapping).name
    summary = await run_status_sync(
        settings, store, name, dry_run=options.dry_run, client=client, dispatcher=dispatcher
    )
    return attach_reports(store, settings, summary)
