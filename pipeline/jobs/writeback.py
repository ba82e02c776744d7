"""The write-back job: AppZen outcomes told to the ERP-side systems (merchant notes, CRM.COM)."""

from __future__ import annotations

from pipeline.appzen.client import AppZenClient
from pipeline.jobs.reports import attach_reports
from pipeline.redact import register_settings
from pipeline.runtime.retry import RetryPolicy
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.summary import RunSummary
from pipeline.writeback import WritebackOptions, run_writeback

__all__ = ["WritebackOptions", "run"]


async def run(
    settings: Settings,
    store: StagingStore,
    options: WritebackOptions,
    *,
    appzen: AppZenClient | None = None,
    policy: RetryPolicy | None = None,
) -> RunSummary:
    """One write-back as a ``writeback`` run (poll and/or import outcomes, then tell the
    merchant platform and CRM.COM); the summary with its failed-row reports attached.
    ``policy`` replaces every system's retry policy (tests: short waits)."""
    register_settings(settings)
    summary = await run_writeback(settings, store, options, policy=policy, appzen=appzen)
    return attach_reports(store, settings, summary)
