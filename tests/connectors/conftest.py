"""Fixtures of the connector tests: the sandbox's merchant platform and CRM.COM (reset with the
sandbox before each test), settings and a connectors file pointing at them, a staging store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.connectors.merchant import MerchantEndpoint, merchant_credentials
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.crm import CrmState
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.load.sync import SyncJob, SyncOptions
from pipeline.runtime.retry import RetryPolicy
from pipeline.settings import Settings, load_settings
from pipeline.staging import SendOutcome, StageItem, StagingStore
from pipeline.summary import RunSummary

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "merchant_invoices.json"
FAST = RetryPolicy(3, base_delay=0.0, max_delay=0.0)
"""Retries without waiting (the sandbox answers at once)."""


def sample_invoices() -> list[dict[str, Any]]:
    """The sample merchant invoices (880100 … 880109), numbers exact."""
    data = json.loads(SAMPLES.read_text("utf-8"), parse_float=Decimal)
    return list(data["invoices"])


@pytest.fixture
def merchant(sandbox: SandboxServer) -> MerchantState:
    """The sandbox's merchant platform holding the sample invoices."""
    state = sandbox.state.merchant
    state.seed(sample_invoices())
    return state


@pytest.fixture
def crm(sandbox: SandboxServer) -> CrmState:
    """The sandbox's CRM.COM, empty."""
    return sandbox.state.crm


@pytest.fixture
def wb_settings(sandbox: SandboxServer, tmp_path: Path) -> Settings:
    """Settings for the sandbox's AppZen, merchant platform and CRM.COM; SQLite staging."""
    return load_settings(
        appzen_base_url=sandbox.base_url,
        merchant_base_url=sandbox.merchant_url,
        crm_base_url=sandbox.crm_url,
        staging_database_url=f"sqlite:///{tmp_path / 'staging.db'}",
        reports_dir=tmp_path / "reports",
        appzen_rate_limit=500,
        appzen_retry_attempts=3,
        appzen_read_timeout=10,
        batch_size=25,
    )


@pytest.fixture
def store(wb_settings: Settings) -> Iterator[StagingStore]:
    """The staging store of ``wb_settings``."""
    opened = StagingStore.open(wb_settings.staging_database_url.get_secret_value())
    yield opened
    opened.close()


@pytest.fixture
def endpoint(sandbox: SandboxServer) -> MerchantEndpoint:
    """The sandbox merchant platform's endpoint."""
    return MerchantEndpoint(sandbox.merchant_url)


@pytest.fixture
def credentials(wb_settings: Settings, sandbox: SandboxServer) -> Any:
    """The sandbox's merchant OAuth client and refresh token (no access token yet)."""
    return merchant_credentials(wb_settings, sandbox.merchant_url)


def write_connectors(folder: Path, **sections: Any) -> Path:
    """A connectors file: the shipped sections (URLs: the sandbox's, via settings) with
    ``sections`` merged over them at the top level."""
    spec: dict[str, Any] = {
        "version": 1,
        "name": "connectors_test",
        "appzen": {"poll": {"lookback_hours": 1, "overlap_minutes": 1}},
        "merchant": {
            "base_url": "http://127.0.0.1:9/merchant",
            "mappings": ["merchant_api"],
            "throughput": {"rate_per_s": 500, "concurrency": 8, "attempts": 3},
        },
        "crm": {
            "base_url": "http://127.0.0.1:9/crm",
            "mappings": ["merchant_api"],
            "rejection_reasons": {
                "default": "Reject Due to Error",
                "map": {"duplicate_invoice_amount": "Reject Due to Duplicate"},
            },
            "throughput": {"rate_per_s": 500, "concurrency": 8, "attempts": 3},
        },
    }
    for key, value in sections.items():
        spec[key] = value
    path = folder / "connectors.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), "utf-8")
    return path


async def sync_merchant(settings: Settings, store: StagingStore) -> RunSummary:
    """Post the sandbox merchant platform's invoices to the sandbox AppZen (mapping
    ``merchant_api``, as the nightly sync would)."""
    options = SyncOptions(REPO / "mappings" / "merchant_api.yaml", project_dir=REPO)
    return await SyncJob(options, settings, store=store).run()


def stage_sent(store: StagingStore, mapping: str, keys: list[str]) -> None:
    """Invoices AppZen acknowledged (CREATED), uuid ``u-<mapping>-<key>``."""
    run = store.start_run("sync", mapping, {}, historical=False)
    items = [StageItem(key, f"h{key}") for key in keys]
    store.claim_batch(mapping, items, owner="t", lease_seconds=60, run_id=run)
    acks = [
        SendOutcome(key, f"h{key}", b"{}", "acked", "create", f"u-{mapping}-{key}", "CREATED")
        for key in keys
    ]
    store.record_outcomes(run, mapping, acks, owner="t")
