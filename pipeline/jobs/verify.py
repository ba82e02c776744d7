"""The verify job: read a sample of sent invoices back from AppZen and list what differs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline import reconcile
from pipeline.appzen.client import AppZenClient
from pipeline.mapping.loader import load_mapping
from pipeline.reconcile import ReconcileReport
from pipeline.redact import register_settings
from pipeline.settings import Settings
from pipeline.staging import StagingStore


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """Which mapping's sent invoices to read back, and how many (a random sample)."""

    mapping: Path
    sample: int = 20


async def run(
    settings: Settings,
    store: StagingStore,
    options: VerifyOptions,
    *,
    client: AppZenClient | None = None,
) -> ReconcileReport:
    """Read ``options.sample`` sent invoices back through AppZen's deprecated get-details
    endpoint and compare them with what was sent (no run is recorded: nothing changes)."""
    register_settings(settings)
    name = load_mapping(options.mapping).name
    return await reconcile.verify(settings, store, name, options.sample, client=client)
