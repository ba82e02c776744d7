"""Fixtures every test package may use (the AppZen sandbox over loopback HTTP, the sample ERP,
settings that point the pipeline at them) and the markers of whole test folders."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs.store import open_store
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

FOLDER_MARKERS = {
    "flows": "prefect",  # Prefect flows on a test server
    "reliability": "reliability",  # faults, kill -9 cycles, hostile input end to end
    "cli": "slow",  # the command line run as an operator runs it: one process per command
    "load": "slow",  # whole sync runs against the sandbox in real time, crashes with kill -9
    "status": "slow",  # whole status-sync runs against the sandbox in real time
}
"""Folders whose every test carries a marker (pyproject.toml describes the markers). Single files
and tests mark themselves (``pytestmark``, ``@pytest.mark.slow``)."""

FAST_LANE_LEAVES_OUT = frozenset(
    {"postgres", "mariadb", "prefect", "reliability", "browser", "slow"}
)
"""Markers of the tests ``pytest --fast`` (``make check``) leaves out: they need a database
server, Prefect or a browser, or they are slow. ``make test`` runs everything."""


SLOW_FIRST = (
    "flows/test_walkthrough.py",
    "flows/test_automations.py",
    "flows/test_multi_worker.py",
    "flows/test_server_stops.py",
    "flows/test_status_deployment.py",
    "flows/test_shared_quota_server.py",
    "cli/test_secrets.py",
    "cli/test_status_read_cli.py",
    "staging/test_concurrency.py",
    "packaging/test_release_worker.py",
    "cli/test_outage.py",
    "packaging/test_wheel.py",
    "flows/test_states.py",
    "reliability/test_hostile_systems.py",
    "flows/test_secrets.py",
    "flows/test_limits.py",
    "flows/test_backfill_resume.py",
    "cli/test_failures_ledger.py",
    "load/test_sync_rate_memory.py",
    "cli/test_exit_codes.py",
    "reliability/test_crashes.py",
    "reliability/test_cli_crashes.py",
    "cli/test_operator_day.py",
    "cli/test_source_failure.py",
    "cli/test_progress_log.py",
)
"""The files that take longest (real Prefect servers and workers, whole CLI runs, kill cycles),
collected first: ``make test``'s xdist workers take files in collection order, so the long ones
start at once and the short ones fill the gaps, instead of one long file ending the run alone.
Measured with ``pytest --durations``; the order only changes how long the suite takes."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast lane (make check): leave out tests marked "
        + ", ".join(sorted(FAST_LANE_LEAVES_OUT)),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Every AppZen on loopback the tests start is appzen-etl's sandbox on a free port
    (:class:`~pipeline.devkit.sandbox.SandboxServer`): its built-in logins apply, as
    ``APPZEN_SANDBOX=true`` says, in this process and the processes it starts. Tests of
    credentials on loopback unset it (tests/test_settings.py)."""
    os.environ.setdefault("APPZEN_SANDBOX", "true")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``--fast``, do not even import a folder whose every test is left out."""
    if config.getoption("--fast") and collection_path.parent == TESTS:
        return FOLDER_MARKERS.get(collection_path.name) in FAST_LANE_LEAVES_OUT or None
    return None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`FOLDER_MARKERS`' folders, put :data:`SLOW_FIRST`'s files first;
    with ``--fast``, leave out the tests that carry a marker of :data:`FAST_LANE_LEAVES_OUT`."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0] if item.path.is_relative_to(TESTS) else ""
        if folder in FOLDER_MARKERS:
            item.add_marker(FOLDER_MARKERS[folder])
    rank = {name: place for place, name in enumerate(SLOW_FIRST)}

    def place(item: pytest.Item) -> int:
        inside = item.path.is_relative_to(TESTS)
        name = "/".join(item.path.relative_to(TESTS).parts) if inside else ""
        return rank.get(name, len(SLOW_FIRST))

    items.sort(key=place)  # stable: within a file and among the rest, the order stays
    if config.getoption("--fast"):
        marked = {item: {mark.name for mark in item.iter_markers()} for item in items}
        config.hook.pytest_deselected(items=[i for i in items if marked[i] & FAST_LANE_LEAVES_OUT])
        items[:] = [item for item in items if not marked[item] & FAST_LANE_LEAVES_OUT]


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
