"""Fixtures every test package may use: the AppZen sandbox over loopback HTTP, the sample ERP,
and settings that point the pipeline at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs.store import open_store
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore

REPO = Path(__file__).resolve().parents[1]


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
def erp(tmp_path: Path) -> tuple[str, GenerationReport]:
    """A fresh sample ERP (SQLite, 60 invoices, a few dirty): ``(url, report)``."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    return url, generate(url, invoices=60, seed=5)


@pytest.fixture
def settings(sandbox: SandboxServer, erp: tuple[str, GenerationReport], tmp_path: Path) -> Settings:
    """Settings for one test: the sandbox, the sample ERP, SQLite staging in ``tmp_path``, a fast
    rate and short timeouts."""
    return load_settings(
        appzen_base_url=sandbox.base_url,
        erp_database_url=erp[0],
        staging_database_url=f"sqlite:///{tmp_path / 'staging.db'}",
        reports_dir=tmp_path / "reports",
        appzen_rate_limit=500,
        appzen_max_concurrency=16,
        appzen_read_timeout=10,
        appzen_retry_attempts=3,
        batch_size=25,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[StagingStore]:
    """The test's SQLite staging store (migrated), closed afterwards."""
    staging = open_store(settings)
    yield staging
    staging.close()
