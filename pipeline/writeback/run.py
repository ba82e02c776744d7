"""One write-back run: AppZen outcomes in (outcomes file, poll), the ERP-side systems told
(merchant notes, CRM.COM rejections), recorded as a ``writeback`` run with its failed rows.

Each system has its own :class:`~pipeline.runtime.dispatch.Dispatcher` (its own rate and retries,
from ``connectors.yaml``); AppZen's uses the settings (APPZEN_RATE_LIMIT …), as posting does. A
fatal answer stops that system only: the others are still told, and the run ends ``failed``.
The poll's watermark (how far the search got) is the run's watermark.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.appzen.client import AppZenClient, client_session
from pipeline.connectors.crm import CrmClient, CrmEndpoint, crm_credentials
from pipeline.connectors.merchant import MerchantClient, MerchantEndpoint, merchant_credentials
from pipeline.errors import BudgetSpent, RemoteError
from pipeline.failures import RowFailure
from pipeline.runtime.clock import SYSTEM_CLOCK, Clock
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.runtime.retry import RetryPolicy
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.budget import close_budget
from pipeline.staging.records import RunStatus
from pipeline.summary import RunSummary
from pipeline.writeback.config import DEFAULT_PATH, ConnectorsSpec, Throughput, load_connectors
from pipeline.writeback.outcomes import read_outcomes_file, resolve
from pipeline.writeback.poll import Poller, parse_watermark
from pipeline.writeback.targets import NoteWriter, TargetResult, reject_in_crm

FLOW = "writeback"


@dataclass(frozen=True, slots=True)
class WritebackOptions:
    """What one run does: which connectors file, an outcomes file to import, which steps."""

    connectors: Path = DEFAULT_PATH
    outcomes_file: Path | None = None
    poll: bool = True
    merchant: bool = True
    crm: bool = True


def dispatcher_for(
    throughput: Throughput, clock: Clock, policy: RetryPolicy | None = None
) -> Dispatcher:
    """A system's own dispatcher: its rate (adaptive), requests in flight and attempts."""
    return Dispatcher(
        limiter=AdaptiveRateLimiter(throughput.rate_per_s, clock=clock),
        policy=policy or RetryPolicy(throughput.attempts),
        clock=clock,
        concurrency=throughput.concurrency,
    )


class WritebackJob:
    """Runs the steps of one write-back and collects counts, failures and fatal stops."""

    def __init__(
        self,
        settings: Settings,
        store: StagingStore,
        spec: ConnectorsSpec,
        options: WritebackOptions,
        *,
        clock: Clock = SYSTEM_CLOCK,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: RetryPolicy | None = None,
    ) -> None:
        self.settings, self.store, self.spec, self.options = settings, store, spec, options
        self.clock, self.now, self.policy = clock, now, policy
        self.summary = RunSummary(None, spec.name, FLOW, False, False)
        self.failures: dict[str, list[RowFailure]] = {}
        self.fatal: list[str] = []
        self.watermark: str | None = None

    async def run(self, appzen: AppZenClient | None = None) -> None:
        """Every step the options and the connectors file enable, in order."""
        self.watermark = await asyncio.to_thread(self.store.last_watermark, self.spec.name, FLOW)
        if self.options.outcomes_file is not None:
            await self.import_file(self.options.outcomes_file)
        if self.options.poll and self.spec.appzen.poll.enabled:
            await self.poll(appzen)
        merchant, crm = self.spec.merchant, self.spec.crm
        if self.options.merchant and merchant is not None and merchant.enabled:
            await self.notes()
        if self.options.crm and crm is not None and crm.enabled:
            await self.rejects()

    async def import_file(self, path: Path) -> None:
        """Store the outcomes of an exported CSV (rows that cannot be used are failures)."""
        rows, failures = await asyncio.to_thread(read_outcomes_file, path)
        imported = await asyncio.to_thread(resolve, rows, self.store.audit, self.spec.mappings)
        self._fail(self.spec.name, failures + imported.failures, "failed_audit")
        for mapping, outcomes in imported.outcomes.items():
            stored = await asyncio.to_thread(self.store.audit.record_outcomes, mapping, outcomes)
            self.summary.counts["outcomes_imported"] += stored

    async def poll(self, appzen: AppZenClient | None) -> None:
        """Search AppZen from the last watermark to now and store the outcomes found."""
        budget = self.store.daily_budget(self.settings, FLOW)
        async with client_session(self.settings, appzen) as client:
            poller = Poller(
                client,
                # reads only: an unreachable AppZen leaves the window to search again (no breaker)
                Dispatcher.from_settings(
                    self.settings, self.clock, policy=self.policy, breaker=False, budget=budget
                ),
                self.store.audit,
                self.spec.appzen.poll,
                set(self.spec.mappings),
            )
            try:
                result = await poller.run(parse_watermark(self.watermark), self.now())
            finally:
                close_budget(budget, self.summary)
        for mapping, outcomes in result.outcomes.items():
            stored = await asyncio.to_thread(self.store.audit.record_outcomes, mapping, outcomes)
            self.summary.counts["outcomes_polled"] += stored
        for name, failures in result.failures.items():
            self._fail(name or self.spec.name, failures, None)
        self.summary.counts.update(result.counts)
        if result.reached is not None:
            self.watermark = result.reached.isoformat()
        self._stop("AppZen", result.fatal)

    async def notes(self) -> None:
        """Write the AppZen uuid and state into each merchant invoice's note."""
        spec = self.spec.merchant
        assert spec is not None
        base = self.settings.merchant_base_url or spec.base_url
        token_url = None if self.settings.merchant_base_url else spec.token_url
        endpoint = MerchantEndpoint(
            base,
            token_url,
            spec.accept_version,
            timeout_s=spec.throughput.timeout_s,
            connections=spec.throughput.concurrency,
        )
        credentials = merchant_credentials(self.settings, base)
        dispatcher = dispatcher_for(spec.throughput, self.clock, self.policy)
        async with MerchantClient(endpoint, credentials) as client:
            for mapping in spec.mappings:
                writer = NoteWriter(
                    self.store.audit, client, dispatcher, mapping, spec.lookup_batch
                )
                self._merge(mapping, await writer.run(), "merchant platform")
            self.summary.counts["merchant_token_refreshes"] += client.refreshes

    async def rejects(self) -> None:
        """Reject in CRM.COM, while DRAFT, every invoice AppZen rejected."""
        spec = self.spec.crm
        assert spec is not None
        base = self.settings.crm_base_url or spec.base_url
        endpoint = CrmEndpoint(
            base,
            token_ttl_s=spec.token_ttl_minutes * 60,
            renew_before_s=spec.renew_before_minutes * 60,
            timeout_s=spec.throughput.timeout_s,
            connections=spec.throughput.concurrency,
        )
        credentials = crm_credentials(self.settings, base)
        dispatcher = dispatcher_for(spec.throughput, self.clock, self.policy)
        async with CrmClient(endpoint, credentials, clock=self.clock) as client:
            for mapping in spec.mappings:
                found = await reject_in_crm(self.store.audit, client, dispatcher, mapping, spec)
                self._merge(mapping, found, "CRM.COM")
            self.summary.counts["crm_logins"] += client.logins

    def _merge(self, mapping: str, result: TargetResult, system: str) -> None:
        self.summary.counts.update(result.counts)
        self._fail(mapping, result.failures, None)
        self._stop(system, result.fatal)

    def _fail(self, mapping: str, failures: list[RowFailure], counter: str | None) -> None:
        if failures:
            self.failures.setdefault(mapping, []).extend(failures)
            self.summary.add_failures(failures)
            if counter is not None:
                self.summary.counts[counter] += len(failures)

    def _stop(self, system: str, fatal: RemoteError | None) -> None:
        if fatal is not None:
            self.summary.budget_spent |= isinstance(fatal, BudgetSpent)
            text = str(fatal)
            self.fatal.append(text if text.startswith(system) else f"{system}: {text}")
            self.summary.fatal = "; ".join(self.fatal)


async def run_writeback(
    settings: Settings,
    store: StagingStore,
    options: WritebackOptions | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    policy: RetryPolicy | None = None,
    appzen: AppZenClient | None = None,
) -> RunSummary:
    """One write-back as a recorded run (flow ``writeback``); its summary. ``policy`` replaces
    every system's retry policy (tests: short waits)."""
    chosen = options or WritebackOptions()
    spec = load_connectors(chosen.connectors)
    job = WritebackJob(settings, store, spec, chosen, clock=clock, now=now, policy=policy)
    summary = job.summary
    parameters = {
        "connectors": str(chosen.connectors),
        "poll": chosen.poll,
        "outcomes_file": str(chosen.outcomes_file) if chosen.outcomes_file else None,
    }
    summary.run_id = store.start_run(FLOW, spec.name, parameters, historical=False)
    started = time.monotonic()
    status: RunStatus = "interrupted"
    try:
        await job.run(appzen)
        status = "failed" if job.fatal else "succeeded"
    finally:
        summary.duration_s = summary.posting_s = time.monotonic() - started
        summary.status, summary.watermark = status, job.watermark
        for mapping, failures in job.failures.items():
            store.record_failures(summary.run_id, mapping, failures)
        summary.counts = Counter({k: v for k, v in summary.counts.items() if v})
        store.finish_run(
            summary.run_id, status=status, counts=dict(summary.counts), watermark=job.watermark
        )
    return summary
