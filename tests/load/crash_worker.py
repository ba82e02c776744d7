"""One nightly sync in its own process, for the crash test (run as a script, not collected).

``python crash_worker.py BASE_URL ERP_URL STAGING_URL LEASE_SECONDS``: runs the sample ERP mapping
against the sandbox at BASE_URL with small batches and few requests in flight, so a sandbox with
some latency keeps it mid-run long enough for the test to kill it with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from pipeline.jobs import sync as sync_job
from pipeline.jobs.store import open_store
from pipeline.load.sync import SyncOptions
from pipeline.settings import load_settings

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "sample_erp.yaml"
BATCH_SIZE = 10
CONCURRENCY = 4


def main(base_url: str, erp_url: str, staging_url: str, lease_seconds: float) -> None:
    """Run the sync to its end and print its summary as JSON (unless killed first)."""
    settings = load_settings(
        appzen_base_url=base_url,
        erp_database_url=erp_url,
        staging_database_url=staging_url,
        appzen_rate_limit=500,
        appzen_max_concurrency=CONCURRENCY,
        appzen_retry_attempts=3,
        batch_size=BATCH_SIZE,
    )
    store = open_store(settings)
    try:
        options = SyncOptions(MAPPING, lease_seconds=lease_seconds)
        summary = asyncio.run(sync_job.run(settings, store, options))
    finally:
        store.close()
    print(json.dumps(summary.as_dict()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
