"""The shared AppZen quota: the global-limit check, which limit a flow shares, block permits under
concurrency, every flow drawing from it, the pace of a partition, and which batch failures a task
retries."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.objects import State
from prefect.exceptions import ObjectNotFound
from prefect.states import Completed, Failed

from flows.backfill import partition_limiter
from flows.common import only_transient
from flows.limits import (
    BLOCK,
    DEFAULT_LIMIT,
    GlobalLimitError,
    PrefectPermits,
    check_limit,
    partition_rate,
    shared_quota,
)
from flows.nightly import nightly_sync
from flows.tasks import post_batch
from pipeline.appzen.errors import CredentialsError, InvalidInvoice, QuotaExceeded
from pipeline.devkit.sandbox import SandboxServer
from pipeline.extract.base import SourceUnavailable
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.ratelimit import AdaptiveRateLimiter
from pipeline.runtime.shared import SharedRateLimiter, provide_permits
from pipeline.settings import Settings, SettingsError
from pipeline.staging import StagingStore
from pipeline.staging.errors import StagingError, StagingTerminalError, StagingTransientError
from tests.flows.helpers import MAPPING

pytestmark = pytest.mark.prefect


async def _create(name: str, limit: int, decay: float) -> None:
    async with get_client() as client:
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=limit, slot_decay_per_second=decay)
        )


async def _delete(name: str) -> None:
    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name(name)


async def _active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


@pytest.fixture
async def limit_name(prefect_server: None) -> AsyncIterator[str]:
    """A fresh global limit name, deleted afterwards if a test created it."""
    name = f"appzen-test-{secrets.token_hex(4)}"
    yield name
    async with get_client() as client:
        with contextlib.suppress(ObjectNotFound):  # the test may not have created it
            await client.delete_global_concurrency_limit_by_name(name)


async def test_a_missing_limit_is_named_with_the_command_that_creates_it(limit_name: str) -> None:
    with pytest.raises(GlobalLimitError) as error:
        await check_limit(limit_name)
    assert f"{limit_name!r} does not exist" in str(error.value)
    assert f"prefect gcl create {limit_name} --limit 20 --slot-decay-per-second 20" in str(
        error.value
    )


async def test_a_limit_without_slot_decay_cannot_share_a_rate(limit_name: str) -> None:
    await _create(limit_name, limit=20, decay=0.0)
    with pytest.raises(GlobalLimitError, match="slot decay > 0"):
        await check_limit(limit_name)


async def test_a_small_limit_is_taken_in_small_blocks_an_empty_one_refused(
    limit_name: str,
) -> None:
    await _create(limit_name, limit=BLOCK - 1, decay=10.0)
    await check_limit(limit_name)
    assert PrefectPermits(limit_name).block == (BLOCK - 1) // 2
    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name(limit_name)
    await _create(limit_name, limit=0, decay=10.0)
    with pytest.raises(GlobalLimitError, match="allows 0 slots"):
        await check_limit(limit_name)


async def test_a_limit_is_taken_in_blocks_of_half_a_second_of_its_decay(limit_name: str) -> None:
    """Row 8c's limit (50 slots, 50/s): blocks of 25."""
    await _create(limit_name, limit=50, decay=50.0)
    await check_limit(limit_name)
    limiter = SharedRateLimiter(
        PrefectPermits(limit_name), AdaptiveRateLimiter(1000.0, clock=SYSTEM_CLOCK)
    )
    assert limiter.block == 25


async def test_concurrent_callers_take_whole_blocks_and_waste_none(limit_name: str) -> None:
    await _create(limit_name, limit=1000, decay=0.001)
    await check_limit(limit_name)
    local = AdaptiveRateLimiter(1000.0, clock=SYSTEM_CLOCK)
    limiter = SharedRateLimiter(PrefectPermits(limit_name), local)

    await asyncio.gather(*(limiter.acquire() for _ in range(3 * BLOCK + 1)))

    assert await _active_slots(limit_name) == 4 * BLOCK  # 16 requests: 4 blocks, not 16


def test_a_partition_starts_at_its_share_of_the_quota() -> None:
    assert partition_rate(20.0, 4, None) == 5.0
    assert partition_rate(20.0, 8, 2) == 10.0  # only two run at once
    assert partition_rate(20.0, 2, 8) == 10.0  # never more at once than there are partitions
    assert partition_rate(20.0, 1, 0) == 20.0


def test_a_sharing_partition_climbs_from_its_share_an_unshared_one_stays(
    settings: Settings,
) -> None:
    """Under a global limit the limit holds a partition back while others run: alone, it climbs
    to APPZEN_RATE_LIMIT. Without one, its share is all that keeps the sum under the quota."""
    configured = settings.model_copy(update={"appzen_rate_limit": 20.0})
    shared = partition_limiter(configured.model_copy(update={"appzen_global_limit": "q"}), 5.0)
    alone = partition_limiter(configured.model_copy(update={"appzen_global_limit": "none"}), 5.0)
    assert isinstance(shared, AdaptiveRateLimiter)
    assert isinstance(alone, AdaptiveRateLimiter)
    assert (shared.current_rate, shared.max_rate) == (5.0, 20.0)
    assert (alone.current_rate, alone.max_rate) == (5.0, 5.0)


async def _limit_of(settings: Settings, parameter: str | None = None) -> str | None:
    return (await shared_quota(settings, parameter)).appzen_global_limit


@pytest.fixture
async def default_limit(prefect_server: None) -> AsyncIterator[str]:
    """The limit ``appzen-api`` on the test server for one test (the README's command)."""
    await _create(DEFAULT_LIMIT, limit=20, decay=20.0)
    yield DEFAULT_LIMIT
    async with get_client() as client:
        await client.delete_global_concurrency_limit_by_name(DEFAULT_LIMIT)


async def test_unset_a_flow_shares_appzen_api_only_when_the_server_has_it(
    settings: Settings, prefect_server: None
) -> None:
    assert settings.appzen_global_limit is None
    assert await _limit_of(settings) == "none", "no limit on the server: paced alone, as before"


async def test_unset_a_flow_shares_the_default_limit_none_turns_it_off(
    settings: Settings, default_limit: str
) -> None:
    assert await _limit_of(settings) == DEFAULT_LIMIT
    off = settings.model_copy(update={"appzen_global_limit": "none"})
    assert await _limit_of(off) == "none"
    assert await _limit_of(settings, "none") == "none", "a flow parameter overrides"


async def test_a_named_limit_must_exist(settings: Settings, limit_name: str) -> None:
    named = settings.model_copy(update={"appzen_global_limit": limit_name})
    with pytest.raises(GlobalLimitError, match=f"{limit_name!r} does not exist"):
        await shared_quota(named)
    await _create(limit_name, limit=100, decay=10.0)
    assert await _limit_of(named) == limit_name


async def test_a_nightly_takes_a_permit_for_every_request_it_sends(
    flow_env: Settings,
    sandbox: SandboxServer,
    limit_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sync's posts and the status-sync's pushes both draw from the limit all flows share
    (slots barely decay here, so the limit's count is what was taken)."""
    await _create(limit_name, limit=100_000, decay=0.001)
    monkeypatch.setenv("APPZEN_GLOBAL_LIMIT", limit_name)

    result = await nightly_sync(mapping=MAPPING)

    sent = sum(sandbox.state.response_counts().values())
    sync, status = result["sync"], result["status_sync"]
    assert isinstance(sync, dict)
    assert isinstance(status, dict)
    assert sync["counts"]["created"] > 0
    assert status["counts"]["requests"] > 0
    taken = await _active_slots(limit_name)
    assert sent <= taken < sent + 2 * BLOCK, f"{sent} requests, {taken} permits"


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (StagingTransientError("staging database sqlite:///s.db: claiming failed: locked"), True),
        (StagingTransientError("staging database x: connection failed: refused (...)"), True),
        (SourceUnavailable("sql/extract.sql on postgresql://…: cannot connect"), True),
        (QuotaExceeded("the AppZen quota is used up", status=429), True),
        (StagingTerminalError("staging database x: password authentication failed"), False),
        (StagingTerminalError('staging database x: database "nodb" does not exist'), False),
        (CredentialsError("check APPZEN_API_KEY", status=401), False),
        (InvalidInvoice("AppZen rejected the invoice", status=400), False),
        (SettingsError("APPZEN_RATE_LIMIT: not a number"), False),
        (ValueError("a bug: database is locked"), False),  # the text alone decides nothing
    ],
)
async def test_a_batch_is_retried_only_for_a_transient_error(
    error: Exception, retried: bool
) -> None:
    state: State[Any] = Failed(data=error, message=str(error))
    assert await only_transient(post_batch, None, state) is retried  # type: ignore[arg-type]
    assert await only_transient(post_batch, None, Completed(data=1)) is False  # type: ignore[arg-type]


async def test_a_batch_is_retried_for_a_real_locked_staging_but_not_a_bad_url(
    tmp_path: Path,
) -> None:
    path = tmp_path / "staging.db"
    with StagingStore.open(f"sqlite:///{path}", busy_timeout=0.1) as store:
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StagingError) as locked:
                store.start_run("nightly", "m", {}, historical=False)
        finally:
            holder.rollback()
            holder.close()
    with pytest.raises(StagingError) as bad_url:
        StagingStore.open("not a url")
    for error, retried in ((locked.value, True), (bad_url.value, False)):
        state: State[Any] = Failed(data=error, message=str(error))
        assert await only_transient(post_batch, None, state) is retried  # type: ignore[arg-type]


def test_a_cli_sync_takes_from_the_limit_the_flows_share(
    flow_env: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``appzen-etl sync`` beside a nightly draws from the same quota: with APPZEN_GLOBAL_LIMIT
    naming a limit of the Prefect server (PREFECT_API_URL), every request it sends, posts and
    status pushes, holds a permit of it (slots barely decay here: the count is what was
    taken)."""
    from typer.testing import CliRunner  # noqa: PLC0415

    from pipeline.cli import app  # noqa: PLC0415

    name = f"appzen-test-{secrets.token_hex(4)}"
    asyncio.run(_create(name, limit=100_000, decay=0.001))
    monkeypatch.setenv("APPZEN_GLOBAL_LIMIT", name)
    try:
        result = CliRunner().invoke(app, ["sync", "--mapping", str(MAPPING), "--json"])
        assert result.exit_code in (0, 1), result.output  # 1: some sample rows are dirty
        sent = sum(sandbox.state.response_counts().values())
        assert sent > 0
        taken = asyncio.run(_active_slots(name))
        assert sent <= taken < sent + 2 * BLOCK, f"{sent} requests, {taken} permits"
    finally:
        provide_permits(None)
        asyncio.run(_delete(name))


def test_a_cli_run_refuses_a_named_limit_without_a_prefect_server(
    flow_env: Settings, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A limit named but no PREFECT_API_URL: exit code 2 naming both, nothing sent (no
    temporary server is started to look)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: PLC0415
    from typer.testing import CliRunner  # noqa: PLC0415

    from pipeline.cli import app  # noqa: PLC0415

    monkeypatch.setenv("APPZEN_GLOBAL_LIMIT", "appzen-api")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["status-sync", "--mapping", str(MAPPING)])
    assert result.exit_code == 2, result.output
    assert "APPZEN_GLOBAL_LIMIT=appzen-api" in result.output
    assert "PREFECT_API_URL" in result.output
    assert sum(sandbox.state.response_counts().values()) == 0
