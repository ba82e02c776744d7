"""One reliability scenario's world: the sample ERP, the sandbox, SQLite staging, and the runs made
against them (each run's failed-row report written as the CLI writes it).

The runs use the pipeline's own entry points (``SyncJob``/``drive`` and ``run_status_sync``) with
short retry backoff, so a scenario with many injected faults takes seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.devkit.sample_erp import GenerationReport
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs.preview import mapped_results
from pipeline.jobs.store import open_store
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.mapping.engine import MappedInvoice, RejectedInvoice
from pipeline.mapping.loader import load_mapping
from pipeline.report import write_reports
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.retry import RetryPolicy
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from pipeline.status.push import run_status_sync
from pipeline.summary import RunSummary

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "sample_erp.yaml"
NAME = "sample_erp"


def scenario_settings(base_url: str, erp_url: str, staging_url: str) -> Settings:
    """Settings of every reliability run: small batches, several requests in flight, room for
    retries, a read timeout a latency spike can exceed."""
    return load_settings(
        appzen_base_url=base_url,
        erp_database_url=erp_url,
        staging_database_url=staging_url,
        appzen_rate_limit=400,
        appzen_max_concurrency=8,
        appzen_read_timeout=1,
        appzen_retry_attempts=12,
        batch_size=10,
    )


def quick_policy(settings: Settings) -> RetryPolicy:
    """The retry policy of the scenario runs: the configured attempts, short backoff (a 429's
    Retry-After is still honoured)."""
    return RetryPolicy(settings.appzen_retry_attempts, base_delay=0.005, max_delay=0.05)


@dataclass(frozen=True, slots=True)
class Expected:
    """What the ERP holds now, as the pipeline maps it."""

    valid: dict[str, MappedInvoice]
    """Every invoice the mapping accepts, by key (AppZen may still refuse some: see world)."""
    invalid: dict[str, RejectedInvoice]
    """Every invoice the mapping refuses, by key."""


@dataclass
class Runs:
    """Nightly runs on one staging (each writes its failed-row report, as the CLI does)."""

    settings: Settings
    store: StagingStore
    reports_dir: Path
    summaries: list[RunSummary] = field(default_factory=list)

    # --- runs ----------------------------------------------------------------------------------
    def sync(self, **changes: Any) -> RunSummary:
        """One incremental sync run (the default lease: a killed run's claims are taken over
        because its process is gone, not because a lease ran out), its report written."""
        options = SyncOptions(MAPPING, **changes)
        job = SyncJob(options, self.settings, store=self.store, retry_policy=self._policy())
        return self._recorded(asyncio.run(job.run()))

    def status_sync(self) -> RunSummary:
        """One status-sync run, its report written."""
        dispatcher = Dispatcher.from_settings(self.settings, SYSTEM_CLOCK, policy=self._policy())
        run = run_status_sync(self.settings, self.store, NAME, dispatcher=dispatcher)
        return self._recorded(asyncio.run(run))

    def nightly(self) -> list[RunSummary]:
        """What ``appzen-etl sync`` does: a sync, then a status-sync unless the sync stopped."""
        synced = self.sync()
        return [synced] if synced.fatal else [synced, self.status_sync()]

    def until_done(self, seconds: float = 30.0) -> list[RunSummary]:
        """Nightly reruns until a whole round sends and pushes nothing and fails nothing (a
        killed run's claims are taken over at once: its process is gone)."""
        deadline = time.monotonic() + seconds
        made: list[RunSummary] = []
        while True:
            round_ = self.nightly()
            made += round_
            if all(_quiet(summary) for summary in round_):
                return made
            assert time.monotonic() < deadline, f"runs still busy after {seconds} s: {made[-2:]}"

    def _recorded(self, summary: RunSummary) -> RunSummary:
        self.summaries.append(summary)
        run = self.store.get_run(summary.run_id or 0)
        assert run is not None, summary.run_id
        write_reports(run, self.store.failures_for_run(run.id), self.reports_dir)
        return summary

    def report_rows(self) -> list[dict[str, str]]:
        """The rows of the failed-row report (CSV) of every run staging recorded, killed runs
        included (``appzen-etl report --run N`` writes the same files)."""
        rows: list[dict[str, str]] = []
        for run in self.store.list_runs(1_000_000):
            paths = write_reports(run, self.store.failures_for_run(run.id), self.reports_dir)
            with paths.csv.open(encoding="utf-8-sig", newline="") as handle:
                rows += list(csv.DictReader(handle))
        return rows

    def _policy(self) -> RetryPolicy:
        return quick_policy(self.settings)

    def counted(self, key: str) -> int:
        """The sum of one count over every run staging recorded (a killed run records none)."""
        return sum(run.counts.get(key, 0) for run in self.store.list_runs(1_000_000))


@dataclass(kw_only=True)
class World(Runs):
    """The scenario's systems (sandbox, ERP, staging) and the runs made on them."""

    sandbox: SandboxServer
    erp_url: str
    erp: GenerationReport
    unknown_suppliers: frozenset[str] = frozenset()

    def expected(self) -> Expected:
        """The ERP as the mapping sees it now."""
        spec = load_mapping(MAPPING)
        valid: dict[str, MappedInvoice] = {}
        invalid: dict[str, RejectedInvoice] = {}
        for result in mapped_results(spec, self.settings):
            if isinstance(result, MappedInvoice):
                valid[result.key] = result
            elif result.key is not None:
                invalid[result.key] = result
        return Expected(valid, invalid)

    def refused_by_appzen(self, expected: Expected) -> set[str]:
        """Valid invoices naming a supplier the sandbox does not know (a business 400)."""
        return {
            key
            for key, mapped in expected.valid.items()
            if str(mapped.invoice.supplier_id) in self.unknown_suppliers
        }


def _quiet(summary: RunSummary) -> bool:
    """A run that found nothing left to do: no send, push, failure or busy claim."""
    c = summary.counts
    busy_or_sent = c["busy"] + c["planned_create"] + c["planned_update"] + c["recreate_resent"]
    pushed = c["pushed"] + c["pushed_error"] + c["failed_status_sync"] + c["recreate"]
    return summary.fatal is None and busy_or_sent + pushed + c["failed_retries"] == 0


def open_world(
    sandbox: SandboxServer, erp_url: str, erp: GenerationReport, tmp_path: Path
) -> World:
    """A world on a fresh SQLite staging in ``tmp_path`` (close its store when done)."""
    staging_url = f"sqlite:///{tmp_path / 'staging.db'}"
    settings = scenario_settings(sandbox.base_url, erp_url, staging_url)
    store = open_store(settings)
    reports = tmp_path / "reports"
    return World(settings, store, reports, sandbox=sandbox, erp_url=erp_url, erp=erp)


def poll(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Wait until ``condition()`` holds (checking every 5 ms); fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.005)


def in_flight(sandbox: SandboxServer) -> int:
    """Requests the sandbox admitted and has not answered or dropped yet."""
    state = sandbox.state
    counts = state.response_counts()
    finished = sum(counts.values()) - counts.get(429, 0) + state.dropped()
    return len(state.accepted_times()) - finished


def settle(sandbox: SandboxServer, seconds: float = 15.0) -> None:
    """Wait until the sandbox has finished every request it admitted (no late commits)."""
    poll(lambda: in_flight(sandbox) <= 0, seconds, "the sandbox finishing its requests")
