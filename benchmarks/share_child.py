"""One worker of row 8c: a backfill run in its own process that shares the AppZen quota through
the Prefect global concurrency limit, as a flow's run does, printing its counts as JSON.

``python -m benchmarks.share_child JSON`` with ``base_url``, ``erp_url``, ``staging_url``,
``rate``, ``folder``, ``global_limit`` and ``label``; ``PREFECT_API_URL`` in the environment names
the server. Prints one JSON line: ``{"counts", "seconds", "fatal"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path


def main(args: dict[str, str]) -> None:
    """Run the backfill and print what it did."""
    from benchmarks.runs import SAMPLE_MAPPING  # noqa: PLC0415 - after the arguments are read
    from flows.limits import shared_quota  # noqa: PLC0415
    from pipeline.jobs.store import open_store  # noqa: PLC0415
    from pipeline.load.sync import SyncJob, SyncOptions  # noqa: PLC0415
    from pipeline.settings import load_settings  # noqa: PLC0415

    folder = Path(args["folder"])
    settings = load_settings(
        appzen_base_url=args["base_url"],
        appzen_sandbox=True,
        erp_database_url=args["erp_url"],
        staging_database_url=args["staging_url"],
        reports_dir=folder / "reports",
        appzen_rate_limit=float(args["rate"]),
        appzen_read_timeout=30,
        appzen_global_limit=args["global_limit"],
    )
    options = SyncOptions(
        SAMPLE_MAPPING, flow="backfill", historical=True, incremental=False, label=args["label"]
    )

    async def run() -> object:
        shared = await shared_quota(settings)  # installs the Prefect permits, checks the limit
        store = open_store(shared)
        try:
            return await SyncJob(options, shared, store=store).run()
        finally:
            store.close()

    started = time.perf_counter()
    summary = asyncio.run(run())
    seconds = time.perf_counter() - started
    counts = dict(getattr(summary, "counts", {}))
    fatal = getattr(summary, "fatal", None)
    print(json.dumps({"counts": counts, "seconds": seconds, "fatal": fatal}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
