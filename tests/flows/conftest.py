"""Fixtures of the flow tests: one Prefect test server for the session, flow settings in the env.

Prefect reads its settings when it is first imported, so this module points ``PREFECT_HOME`` at a
throwaway folder and turns telemetry off before anything imports ``prefect`` (the test modules
here import the flows, which import it).
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Imported before Prefect starts its threads: otherwise, in a session that runs only these tests,
# hypothesis's pytest plugin imports it at the very end (pytest parses its source to rewrite it)
# while a Prefect thread may format a traceback (which parses source too), and CPython 3.11's AST
# builder is not safe for that: "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905).
import hypothesis  # noqa: F401
import pytest

from pipeline.devkit.sample_erp import GenerationReport
from pipeline.settings import Settings

PREFECT_HOME = Path(tempfile.mkdtemp(prefix="appzen-etl-prefect-"))
os.environ["PREFECT_HOME"] = str(PREFECT_HOME)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_LOGGING_TO_API_BATCH_INTERVAL"] = "0.3"
atexit.register(shutil.rmtree, PREFECT_HOME, True)


SECRET_VARIABLES = ("APPZEN_API_KEY", "APPZEN_CUSTOMER_ID", "APPZEN_CUSTOMER_KEY")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server (SQLite in a temporary folder) for every flow test, given up to
    180 s to answer: on two cores at load 15 to 20 it took over 60 s (the wait this fixture
    had), and every flow test of that xdist worker errored."""
    from prefect.settings import (  # noqa: PLC0415 - prefect reads the environment on import
        PREFECT_HOME as HOME,
    )
    from prefect.settings import (  # noqa: PLC0415
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness  # noqa: PLC0415

    home = {HOME: PREFECT_HOME, PREFECT_SERVER_ANALYTICS_ENABLED: False}
    with temporary_settings(updates=home), prefect_test_harness(server_startup_timeout=180):
        yield
    gc.collect()  # Prefect's leftovers (closed loops' transports) go now, not mid-parse later


@pytest.fixture
def flow_env(prefect_server: None, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's ``settings`` as the environment a flow reads (flows load their own settings);
    no AppZen credentials in it, so the sandbox's own apply."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    erp = settings.erp_database_url
    assert erp is not None
    values = {
        "APPZEN_BASE_URL": settings.appzen_base_url,
        "ERP_DATABASE_URL": erp.get_secret_value(),
        "STAGING_DATABASE_URL": settings.staging_database_url.get_secret_value(),
        "REPORTS_DIR": str(settings.reports_dir),
        "APPZEN_RATE_LIMIT": str(settings.appzen_rate_limit),
        "APPZEN_MAX_CONCURRENCY": str(settings.appzen_max_concurrency),
        "APPZEN_READ_TIMEOUT": str(settings.appzen_read_timeout),
        "APPZEN_RETRY_ATTEMPTS": str(settings.appzen_retry_attempts),
        "BATCH_SIZE": str(settings.batch_size),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return settings


@pytest.fixture
def erp_report(erp: tuple[str, GenerationReport]) -> GenerationReport:
    """What the test's sample ERP holds (its dirty rows, its ERP errors)."""
    return erp[1]
