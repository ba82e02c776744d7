"""The client's connections spread over small httpx pools, against the sandbox over loopback."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pipeline.appzen.client import POOL_CONNECTIONS, AppZenClient, _pool_sizes
from pipeline.appzen.models import Invoice, payload_json
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import load_settings
from tests.sandbox.helpers import make_invoice


@pytest.mark.parametrize("connections", [1, 3, 4, 5, 10, 16, 33, 1000])
def test_connections_are_split_into_balanced_pools_of_at_most_four(connections: int) -> None:
    sizes = _pool_sizes(connections)
    assert sum(sizes) == connections
    assert max(sizes) <= POOL_CONNECTIONS
    assert max(sizes) - min(sizes) <= 1


async def test_concurrent_creates_use_every_pool_and_all_succeed(sandbox: SandboxServer) -> None:
    settings = load_settings(appzen_base_url=sandbox.base_url, appzen_max_concurrency=10)
    client = AppZenClient(settings)
    assert [pool_limit(pool) for pool in client._pools] == [4, 3, 3]
    bodies = [make_invoice(f"INV-{n}") for n in range(30)]
    async with client:
        answers = await asyncio.gather(
            *(client.create_or_update(_bytes(body), historical=True) for body in bodies)
        )
        assert client._busy == [0, 0, 0]
    assert {answer.status for answer in answers} == {"CREATED"}
    assert len({answer.uuid for answer in answers}) == 30
    assert len(sandbox.state.invoices()) == 30
    assert all(pool.is_closed for pool in client._pools)


async def test_a_given_transport_gets_one_pool() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    settings = load_settings(appzen_max_concurrency=16)
    async with AppZenClient(settings, transport=httpx.MockTransport(handler)) as client:
        assert len(client._pools) == 1


def pool_limit(pool: httpx.AsyncClient) -> int:
    transport = pool._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    return int(transport._pool._max_connections)


def _bytes(body: dict[str, object]) -> bytes:
    return payload_json(Invoice.model_validate(body))
