"""One AppZen quota for every run: with APPZEN_GLOBAL_LIMIT and a permit source installed, every
dispatcher that calls AppZen holds a shared permit per request (sync posts, status pushes,
retry-failed, verify's reads); without either, a run paces alone as before."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import status as status_job
from pipeline.jobs import verify as verify_job
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.dispatch import Dispatcher
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.runtime.shared import (
    BLOCK,
    SharedRateLimiter,
    block_size,
    provide_permits,
    share,
)
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import MAPPING, options, retry_all_failed, run_sync, tuned


class CountingPermits:
    """A shared limit that always has permits and counts what was taken, per limit name."""

    taken: ClassVar[dict[str, int]] = {}
    block = BLOCK

    def __init__(self, name: str) -> None:
        self.name = name

    async def take(self, count: int) -> None:
        await asyncio.sleep(0)
        CountingPermits.taken[self.name] = CountingPermits.taken.get(self.name, 0) + count


@pytest.fixture
def permits() -> Iterator[dict[str, int]]:
    """Install :class:`CountingPermits` for the test; what each limit handed out."""
    CountingPermits.taken = {}
    provide_permits(CountingPermits)
    try:
        yield CountingPermits.taken
    finally:
        provide_permits(None)


def _limiter(settings: Settings) -> object:
    return Dispatcher.from_settings(settings, SYSTEM_CLOCK, breaker=False).limiter


def test_a_run_paces_alone_unless_a_limit_is_named_and_can_be_taken_from(
    settings: Settings, permits: dict[str, int]
) -> None:
    assert isinstance(_limiter(settings), AdaptiveRateLimiter), "no limit named: as before"
    assert isinstance(_limiter(tuned(settings, appzen_global_limit="none")), AdaptiveRateLimiter)
    shared = _limiter(tuned(settings, appzen_global_limit="appzen-api"))
    assert isinstance(shared, SharedRateLimiter)
    assert shared.name == "appzen-api"
    assert share(shared, "other") is shared, "never wrapped twice"
    provide_permits(None)  # the CLI: no Prefect, nothing to take permits from
    assert isinstance(
        _limiter(tuned(settings, appzen_global_limit="appzen-api")), AdaptiveRateLimiter
    )


async def test_permits_are_taken_a_block_at_a_time_and_none_wasted(
    permits: dict[str, int],
) -> None:
    limiter = SharedRateLimiter(
        CountingPermits("q"), AdaptiveRateLimiter(1000.0, clock=SYSTEM_CLOCK)
    )

    await asyncio.gather(*(limiter.acquire() for _ in range(3 * BLOCK + 1)))

    assert permits == {"q": 4 * BLOCK}  # 16 requests: 4 blocks


def test_a_block_is_half_a_second_of_the_decay_within_the_limit() -> None:
    """Fewer, larger takes lose less of the limit's decay to the server's floor; a block is
    never more than half the limit (free again before the whole limit is) nor less than 1."""
    assert block_size(50, 50.0) == 25  # row 8c's limit: 25, not 10
    assert block_size(20, 20.0) == BLOCK  # the README's limit
    assert block_size(1000, 400.0) == 200
    assert block_size(1000, 0.001) == BLOCK  # a barely decaying limit: at least a block of 10
    assert block_size(9, 10.0) == 4
    assert block_size(1, 10.0) == 1


def _requests(sandbox: SandboxServer) -> int:
    return sum(sandbox.state.response_counts().values())


def test_every_job_that_calls_appzen_takes_a_permit_per_request(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    permits: dict[str, int],
    tmp_path: Path,
) -> None:
    """Posts, status pushes, retry-failed and verify's reads: each job's requests are covered
    by the permits it took, at most a block per dispatcher unused."""
    shared = tuned(settings, appzen_global_limit="quota", appzen_retry_attempts=1)
    sandbox.state.configure(fail_rate=0.2, seed=7)  # some invoices fail: retry-failed has work

    def sync() -> None:
        run_sync(options(), shared, store)
        sandbox.state.configure(fail_rate=0.0)

    jobs: dict[str, Callable[[], object]] = {
        "sync": sync,
        "status": lambda: asyncio.run(
            status_job.run(shared, store, status_job.StatusOptions(MAPPING))
        ),
        "retry": lambda: retry_all_failed(shared, store),
        "verify": lambda: asyncio.run(
            verify_job.run(shared, store, verify_job.VerifyOptions(MAPPING, sample=10))
        ),
    }
    for job, run in jobs.items():
        before, taken = _requests(sandbox), permits.get("quota", 0)
        run()
        sent, took = _requests(sandbox) - before, permits.get("quota", 0) - taken
        assert sent > 0, f"{job} sent nothing"
        assert sent <= took < sent + 2 * BLOCK, f"{job}: {sent} requests, {took} permits"
