"""Sandbox fixtures: one server per session, reset before each test, and clients for it.

Other test packages can reuse them; the lead may register this module (or copy the two server
fixtures) in ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from pipeline.sandbox import SandboxServer
from tests.sandbox.helpers import AUTH


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """One sandbox for the session; prefer :func:`sandbox`, which resets it first."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, reset: no invoices, no counts, default knobs."""
    sandbox_server.state.reset()
    return sandbox_server


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
