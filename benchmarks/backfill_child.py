"""One dry-run backfill in a fresh process, reporting its own peak RSS (VmHWM) as JSON.

``python -m benchmarks.backfill_child MAPPING STAGING_URL [ERP_URL]`` runs the backfill flow
(historical, not incremental) with ``SyncOptions(dry_run=True)``: extract, map, validate,
serialize, hash and plan every batch against staging, send nothing. Prints one JSON line:
``{"seconds", "counts", "peak_rss_kib", "failures_kept"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path


def peak_rss_kib() -> int:
    """This process's peak resident set size (``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (not Linux?)")


def main(mapping: str, staging_url: str, erp_url: str | None) -> None:
    """Run the dry-run backfill and print what it did and its peak RSS."""
    from pipeline.jobs import sync as sync_job  # noqa: PLC0415 - measured after imports
    from pipeline.jobs.store import open_store  # noqa: PLC0415
    from pipeline.load.sync import SyncOptions  # noqa: PLC0415
    from pipeline.settings import load_settings  # noqa: PLC0415

    settings = load_settings(
        erp_database_url=erp_url,
        staging_database_url=staging_url,
        reports_dir=Path(staging_url.removeprefix("sqlite:///")).parent / "reports",
    )
    store = open_store(settings)
    options = SyncOptions(
        Path(mapping), flow="backfill", historical=True, incremental=False, dry_run=True
    )
    started = time.perf_counter()
    try:
        summary = asyncio.run(sync_job.run(settings, store, options))
    finally:
        store.close()
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "counts": dict(summary.counts),
                "failures_kept": len(summary.failures),
                "peak_rss_kib": peak_rss_kib(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
