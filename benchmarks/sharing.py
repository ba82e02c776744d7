"""Row 8c: two workers share one AppZen quota through the Prefect global concurrency limit.

A Prefect server (its own ``PREFECT_HOME``, SQLite: only the limit is used) with the limit
``appzen-api`` created as the README says (limit and decay the quota), one PostgreSQL staging
schema, and two worker processes (:mod:`benchmarks.share_child`) backfilling the same sample ERP
at once, each configured at twice the quota: claims split the invoices between them, the limit
splits the quota. The figure is the sandbox's accepted requests per second (the bucket's initial
credit left out) ÷ the quota and the share of 429 answers, as rows 1 and 8.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.inputs import pg_schema
from benchmarks.runs import REPO
from benchmarks.sandbox import Counts, SandboxProcess
from pipeline.staging import StagingStore

PREFECT = str(Path(sys.executable).with_name("prefect"))
LIMIT = "appzen-api"
WORKERS = 2
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_ENABLED": "false",
    **{
        f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false"
        for name in ("SCHEDULER", "LATE_RUNS", "FOREMAN", "REPOSSESSOR", "TRIGGERS")
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def prefect_server(folder: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on a free loopback port; the environment of a client of it."""
    port = _free_port()
    home = folder / "prefect-home"
    env = {**os.environ, **QUIET, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*args, "--analytics-off"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}/api"
        try:
            _wait_healthy(server, url, log)
            yield {**env, "PREFECT_API_URL": url}
        finally:
            server.terminate()
            server.wait(30)


def _wait_healthy(server: subprocess.Popen[bytes], url: str, log: object) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the Prefect server exited before answering")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError("the Prefect server did not answer /api/health within 120 s")


def create_limit(env: dict[str, str], quota: float) -> None:
    """``prefect gcl create appzen-api --limit Q --slot-decay-per-second Q``."""
    q = str(int(quota))
    args = [PREFECT, "gcl", "create", LIMIT, "--limit", q, "--slot-decay-per-second", q]
    subprocess.run(args, env=env, check=True, capture_output=True, timeout=120)


def two_workers(
    erp_url: str, folder: Path, *, quota: float, latency_ms: float, rate: float
) -> tuple[Counts, list[dict[str, object]]]:
    """Both workers' backfill of ``erp_url`` under one limit: the sandbox's counts and each
    worker's own report."""
    folder.mkdir(parents=True, exist_ok=True)
    with (
        SandboxProcess(rate=quota, latency_ms=latency_ms) as sandbox,
        pg_schema("bench_share") as staging_url,
        prefect_server(folder) as env,
    ):
        StagingStore.open(staging_url).close()  # migrated once, before both start
        create_limit(env, quota)
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.share_child", json.dumps(args)],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for args in (
                {
                    "base_url": sandbox.base_url,
                    "erp_url": erp_url,
                    "staging_url": staging_url,
                    "rate": str(rate),
                    "folder": str(folder / f"worker{n}"),
                    "global_limit": LIMIT,
                    "label": f"worker{n}",
                }
                for n in range(WORKERS)
            )
        ]
        reports = [_report(worker) for worker in workers]
        return sandbox.counts(), reports


def _report(worker: subprocess.Popen[str]) -> dict[str, object]:
    out, _ = worker.communicate(timeout=900)
    if worker.returncode != 0:
        raise RuntimeError(f"a row 8c worker exited {worker.returncode}")
    report: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    if report.get("fatal"):
        raise RuntimeError(f"a row 8c worker stopped: {report['fatal']}")
    return report
