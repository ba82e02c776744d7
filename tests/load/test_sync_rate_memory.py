"""The rate AppZen's 429s taught a run is remembered in staging: the next run starts just under
it instead of re-probing from APPZEN_RATE_LIMIT (at the default APPZEN_REMEMBER_RATE=true)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.devkit.sample_erp import generate
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import assert_counts_add_up, options, run_sync, tuned

QUOTA = 10.0  # low enough that even a busy machine sends faster: the first run needs 429s


def throttled(sandbox: SandboxServer) -> int:
    return sandbox.state.response_counts().get(429, 0)


def test_the_next_run_starts_from_the_rate_the_last_one_learned(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.state.configure(rate=QUOTA)
    first_erp, second_erp = (f"sqlite:///{tmp_path / f'erp{n}.db'}" for n in (1, 2))
    generate(first_erp, invoices=120, seed=31)
    generate(second_erp, invoices=120, seed=32)  # the same keys, other contents: all re-sent
    eager = tuned(settings, appzen_rate_limit=4 * QUOTA, appzen_retry_attempts=10)
    assert eager.appzen_remember_rate, "on by default"

    first = run_sync(options(), tuned(eager, erp_database_url=SecretStr(first_erp)), store)
    first_429 = throttled(sandbox)
    memory = store.rate_memory(eager, "invoices")
    assert memory is not None
    learned = memory.recall()

    assert first_429 > 0
    assert first.counts["failed_retries"] == 0
    assert learned is not None, "the 429s were remembered"
    assert QUOTA * 0.5 <= learned.quota <= 4 * QUOTA

    with caplog.at_level(logging.INFO, logger="pipeline.staging.ratememory"):
        second = run_sync(
            options(force=True), tuned(eager, erp_database_url=SecretStr(second_erp)), store
        )  # a full re-read: the second ERP's dates are not past the first's watermark

    start = min(4 * QUOTA, learned.quota)
    assert f"AppZen rate: starting at {start:.1f}/s" in caplog.text, "at the quota measured"
    assert second.counts["updated"] > 100
    assert second.counts["failed_retries"] == 0
    assert_counts_add_up(second)
    # How many 429s that saves is measured by the benchmark (benchmarks/README.md, row 8), not
    # here: counts of 429s depend on how fast a loaded machine sends.


def test_switched_off_every_run_starts_from_the_configured_rate(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, tmp_path: Path
) -> None:
    sandbox.state.configure(rate=QUOTA)
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    generate(url, invoices=60, seed=33)
    forgetful = tuned(
        settings,
        appzen_rate_limit=4 * QUOTA,
        appzen_retry_attempts=10,
        appzen_remember_rate=False,
        erp_database_url=SecretStr(url),
    )

    run_sync(options(), forgetful, store)

    assert throttled(sandbox) > 0
    assert store.rate_memory(forgetful, "invoices") is None
    remembering = tuned(forgetful, appzen_remember_rate=True)
    memory = store.rate_memory(remembering, "invoices")
    assert memory is not None
    assert memory.recall() is None, "nothing was stored"
