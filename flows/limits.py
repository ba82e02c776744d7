"""The AppZen quota shared by every flow and worker: a Prefect global concurrency limit with slot
decay.

Every flow resolves the limit when it loads its settings (:func:`shared_quota`, called by
:func:`flows.common.flow_settings`) and installs :class:`PrefectPermits` as this process's way to
take permits (:func:`pipeline.runtime.shared.provide_permits`); from then on every AppZen request
of the run — posts, status pushes, retry-failed, write-back's searches — holds a permit of it
(:class:`pipeline.runtime.shared.SharedRateLimiter`, taken in blocks of
:func:`~pipeline.runtime.shared.block_size`: half a second of the limit's decay, at least 10, at
most half its slots). Which limit: ``APPZEN_GLOBAL_LIMIT`` when set (it must
exist: ``strict``, a misspelled name fails loudly instead of meaning "no limit"); unset, the limit
:data:`DEFAULT_LIMIT` when the server has it (created once per server, as the README says:
``prefect gcl create appzen-api --limit 20 --slot-decay-per-second 20``), else none and the run
paces alone as before; ``none``: never. A backfill's ``global_limit`` parameter overrides it.

The limit's decay is the quota; its ``--limit`` is the burst it hands out after an idle spell, so
no second holds more than quota + limit. A backfill partition starts at its share of the quota
(:func:`partition_rate`) so that the first seconds stay under it, and climbs to the configured
rate from there: the limit holds it back while others run, alone it gets the whole quota.
"""

from __future__ import annotations

import asyncio
import logging
import random

import httpx
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import (
    GlobalConcurrencyLimitResponse as GlobalConcurrencyLimit,
)
from prefect.concurrency._asyncio import aacquire_concurrency_slots
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.exceptions import MissingContextError, ObjectNotFound
from prefect.settings import get_current_settings

from pipeline.errors import ConfigurationError
from pipeline.runtime.shared import BLOCK, OFF, block_size, provide_permits, shared_name
from pipeline.settings import Settings

DEFAULT_LIMIT = "appzen-api"

__all__ = ["BLOCK", "DEFAULT_LIMIT", "OFF", "GlobalLimitError", "PrefectPermits"]


class GlobalLimitError(ConfigurationError):
    """The global concurrency limit a flow should share is missing or cannot rate-limit."""


_LIMITS: dict[str, tuple[int, float]] = {}
"""The slots and the slot decay (permits per second) of each limit :func:`shared_quota`
checked."""


class PrefectPermits:
    """Permits of the Prefect global concurrency limit ``name`` (``strict``: never "no limit").

    Refused (423), it asks again after about the time the limit takes to free ``count`` slots
    (its decay, ±20 % so that processes do not ask in step), not after the server's
    ``Retry-After``: that grows with every refusal of every process (Prefect counts them as
    denied slots), so processes that ask for more than their share slept for seconds while the
    limit's slots decayed unused (two workers sharing 50/s reached 38/s; benchmarks row 8c)."""

    def __init__(self, name: str) -> None:
        self.name = name
        limit, decay = _LIMITS.get(name, (None, None))
        self.decay = decay
        self.block = BLOCK if limit is None or decay is None else block_size(limit, decay)
        """Permits taken at once (:func:`~pipeline.runtime.shared.block_size`; 10 when the
        limit was not checked)."""

    async def take(self, count: int) -> None:
        """Wait until ``count`` slots of the limit are taken (they decay back by themselves)."""
        while True:
            try:
                await aacquire_concurrency_slots(
                    [self.name], count, mode="rate_limit", max_retries=0, strict=True
                )
            except ConcurrencySlotAcquisitionError as error:
                wait = self._refused_wait(error, count)
                if wait is None:
                    raise
                await asyncio.sleep(wait)
            else:
                return

    def _refused_wait(self, error: ConcurrencySlotAcquisitionError, count: int) -> float | None:
        """Seconds to wait after a refusal (423), or None for any other error."""
        cause = error.__cause__
        if not isinstance(cause, httpx.HTTPStatusError) or cause.response.status_code != 423:
            return None
        told = float(cause.response.headers.get("Retry-After", 0.0))
        if not self.decay:
            return told
        return min(told, count / self.decay * random.uniform(0.8, 1.2))  # noqa: S311


def _create_hint(name: str) -> str:
    return (
        f"create it once per Prefect server: prefect gcl create {name} --limit 20 "
        "--slot-decay-per-second 20 (the AppZen quota), or run without a shared quota "
        "(one worker only: APPZEN_GLOBAL_LIMIT=none, or a backfill's global_limit null)"
    )


async def _read(name: str) -> GlobalConcurrencyLimit | None:
    async with get_client() as client:
        try:
            return await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return None


async def check_limit(name: str) -> None:
    """Fail fast, before any invoice is claimed, when the limit ``name`` does not exist on the
    Prefect server, is inactive, or has no slot decay (permits would never come back)."""
    limit = await _read(name)
    if limit is None:
        async with get_client() as client:
            where = client.api_url
        raise GlobalLimitError(
            f"global concurrency limit {name!r} does not exist on the Prefect server at "
            f"{where}: {_create_hint(name)}"
        )
    _check(limit)


def _check(limit: GlobalConcurrencyLimit) -> None:
    name = limit.name
    _LIMITS[name] = (limit.limit, limit.slot_decay_per_second)
    if not limit.active or limit.slot_decay_per_second <= 0:
        raise GlobalLimitError(
            f"global concurrency limit {name!r} must be active with a slot decay > 0 to share "
            f"a request rate (active={limit.active}, slot decay={limit.slot_decay_per_second}/s):"
            f" prefect gcl update {name} --enable --slot-decay-per-second {limit.limit}"
        )
    if limit.limit < 1:
        raise GlobalLimitError(
            f"global concurrency limit {name!r} allows {limit.limit} slots: no request could "
            f"ever be sent: prefect gcl update {name} --limit {BLOCK * 2}"
        )


async def shared_quota(settings: Settings, global_limit: str | None = None) -> Settings:
    """``settings`` with ``appzen_global_limit`` resolved to the limit this flow run shares (or
    ``none``), checked on the server; ``global_limit`` (a flow parameter) overrides the setting.
    Installs :class:`PrefectPermits` for this process."""
    provide_permits(PrefectPermits)
    configured = global_limit or settings.appzen_global_limit
    name = shared_name(configured)
    if name is not None:
        await check_limit(name)
    elif configured is None:  # unset: the default limit if the server has one
        found = await _read(DEFAULT_LIMIT)
        if found is not None and found.active:
            _check(found)
            name = DEFAULT_LIMIT
    if name is not None:
        _logger().info(
            "AppZen quota shared with every flow and worker: global concurrency limit %r", name
        )
    return settings.model_copy(update={"appzen_global_limit": name or OFF})


def cli_shared_quota(settings: Settings) -> Settings:
    """The quota a run started from the command line (``appzen-etl sync``, backfill, status-sync,
    retry-failed, write-back, verify) shares when ``APPZEN_GLOBAL_LIMIT`` names a limit: that
    limit of the Prefect server of ``PREFECT_API_URL``, checked and taken from as a flow's is
    (:func:`shared_quota`), so that a CLI backfill beside a nightly draws from the one quota
    instead of adding its own pace to it. The entry point
    :data:`pipeline.runtime.shared.ENTRY_POINTS` of this package.

    Unset or ``none``: unchanged (the CLI does not look for :data:`DEFAULT_LIMIT` by itself: it
    would import Prefect and ask a server on every command). No Prefect server configured, or
    one that cannot be reached: a configuration error naming both ways out."""
    name = shared_name(settings.appzen_global_limit)
    if name is None:
        return settings
    url = get_current_settings().api.url
    if not url:
        raise GlobalLimitError(
            f"APPZEN_GLOBAL_LIMIT={name} names a Prefect global concurrency limit, but no "
            "Prefect server is configured: set PREFECT_API_URL (e.g. http://prefect:4200/api), "
            "or APPZEN_GLOBAL_LIMIT=none to pace this run alone"
        )
    try:
        return asyncio.run(shared_quota(settings))
    except httpx.TransportError as error:
        raise GlobalLimitError(
            f"the Prefect server at {url} cannot be reached to share the AppZen quota through "
            f"{name!r} ({type(error).__name__}): start it, or run with APPZEN_GLOBAL_LIMIT=none "
            "(this run alone on the quota)"
        ) from None


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:  # called outside a flow run
        return logging.getLogger(__name__)


def partition_rate(rate: float, partitions: int, parallel: int | None) -> float:
    """The pace a partition starts at: ``rate`` shared by the partitions that run at once."""
    at_once = max(1, min(partitions, parallel or partitions))
    return rate / at_once
