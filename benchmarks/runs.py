"""Pipeline runs for the benchmarks: settings that point at a sandbox process, timed sync runs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.jobs.store import open_store
from pipeline.load.sync import Flow, SyncJob, SyncOptions
from pipeline.mapping.loader import load_mapping
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary

REPO = Path(__file__).resolve().parents[1]
SAMPLE_MAPPING = REPO / "mappings" / "sample_erp.yaml"


def settings_for(
    base_url: str,
    erp_url: str,
    folder: Path,
    *,
    rate: float,
    concurrency: int = 16,
    staging: str = "staging.db",
) -> Settings:
    """Settings for one benchmark run: the sandbox, the ERP, SQLite staging in ``folder``."""
    return load_settings(
        appzen_base_url=base_url,
        appzen_sandbox=True,  # base_url: the benchmark's own sandbox on a free port
        erp_database_url=erp_url,
        staging_database_url=f"sqlite:///{folder / staging}",
        reports_dir=folder / "reports",
        appzen_rate_limit=rate,
        appzen_max_concurrency=concurrency,
        appzen_read_timeout=30,
    )


@dataclass(frozen=True, slots=True)
class Timed:
    """A run's summary and its wall-clock seconds."""

    summary: RunSummary
    seconds: float

    @property
    def requests(self) -> int:
        """AppZen requests the run sent (every attempt)."""
        return int(self.summary.counts["requests"])


def sync(
    settings: Settings,
    store: StagingStore,
    *,
    flow: Flow = "backfill",
    mapping: Path = SAMPLE_MAPPING,
) -> Timed:
    """One full (not incremental) run of ``mapping``, timed."""
    options = SyncOptions(mapping, flow=flow, historical=flow == "backfill", incremental=False)
    started = time.perf_counter()
    summary = asyncio.run(SyncJob(options, settings, store=store).run())  # no report files
    seconds = time.perf_counter() - started
    if summary.fatal:
        raise RuntimeError(f"benchmark run stopped: {summary.fatal}")
    return Timed(summary, seconds)


def status_sync(settings: Settings, store: StagingStore, mapping: Path = SAMPLE_MAPPING) -> Timed:
    """One status-sync run, timed."""
    started = time.perf_counter()
    name = load_mapping(mapping).name
    summary = asyncio.run(run_status_sync(settings, store, name))  # no report files
    return Timed(summary, time.perf_counter() - started)


def store_for(settings: Settings) -> StagingStore:
    """The (migrated) staging store of ``settings``."""
    return open_store(settings)
