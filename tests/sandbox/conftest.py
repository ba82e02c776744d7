"""Sandbox test clients; the server fixtures (sandbox_server, sandbox) are in tests/conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.sandbox.helpers import AUTH


@pytest.fixture
def appzen(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox's AppZen root with the sandbox's credentials."""
    with httpx.Client(base_url=sandbox.base_url, headers=AUTH, timeout=10.0) as client:
        yield client


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox's ``/_sandbox`` admin root (no auth)."""
    with httpx.Client(base_url=sandbox.admin_url, timeout=10.0) as client:
        yield client


@pytest.fixture
async def appzen_async(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    """An async httpx client on the AppZen root, with room for 64 requests in flight."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=sandbox.base_url, headers=AUTH, timeout=10.0, limits=limits
    ) as client:
        yield client
