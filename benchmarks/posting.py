"""Rows 1 and 2: posting against the sandbox (in its own process).

Row 1, at the quota (50 requests/s, 100 ms latency): the share of the quota the pipeline achieves
(accepted requests per second, the token bucket's initial credit left out, ÷ the quota) and its
share of 429 answers, with the client configured at the quota and at twice the quota, beside a
naive sequential httpx loop. Row 8, the remembered rate: the client configured at twice the
quota, a first run with no memory (8a, re-probing) then a second run that starts from what the
first learned (8b), each over its own invoices, and two worker processes on one PostgreSQL staging
sharing the quota through a Prefect global concurrency limit (8c, :mod:`benchmarks.sharing`).
Row 2, with no quota: the invoices per second a
full backfill posts ÷ the ceiling ``wrk`` reaches on the same sandbox in the same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.report import Figure
from benchmarks.runs import SAMPLE_MAPPING, settings_for, store_for, sync
from benchmarks.sandbox import Counts, SandboxProcess
from benchmarks.sharing import two_workers
from benchmarks.wrk import ceiling
from pipeline.mapping import MappedInvoice, MappingEngine, load_mapping
from pipeline.settings import SANDBOX_CREDENTIALS

QUOTA = 50.0
LATENCY_MS = 100.0
QUOTA_TARGET = 0.85
RAW_TARGET = 0.5
FRESH_TARGET = (0.95, 0.01)
REMEMBERED_TARGET = (0.98, 0.005)
SHARED_TARGET = (0.95, 0.01)
"""Row 8's targets: (share of the quota, at most this share of answers 429)."""


@dataclass(frozen=True, slots=True)
class Share:
    """Achieved share of the quota and share of 429 answers of one posting run."""

    rate: float
    throttled: float
    requests: int

    @classmethod
    def of(cls, counts: Counts, burst: int) -> Share:
        """From the sandbox's counts (the first ``burst`` accepted requests left out)."""
        throttled = counts.throttled / counts.total if counts.total else 0.0
        return cls(counts.steady_rate(burst), throttled, counts.total)

    def cell(self) -> str:
        """``0.97 of 50/s (48.6/s), 429s 1.2 %``."""
        return (
            f"{self.rate / QUOTA:.2f} of {QUOTA:.0f}/s ({self.rate:.1f}/s), "
            f"429s {self.throttled:.1%} of {self.requests}"
        )


def payloads(erp_url: str, count: int) -> list[MappedInvoice]:
    """The first ``count`` mapped invoices of the sample ERP at ``erp_url``."""
    spec = load_mapping(SAMPLE_MAPPING)
    source = spec.open_source(None, erp_url)
    out: list[MappedInvoice] = []
    for result in MappingEngine(spec).run(source.chunks({"since": None, "until": None})):
        if isinstance(result, MappedInvoice):
            out.append(result)
            if len(out) == count:
                break
    return out


def naive_loop(base_url: str, invoices: list[MappedInvoice]) -> float:
    """POST each payload in turn on one keep-alive connection, waiting for each answer (what a
    first script does); the wall-clock seconds."""
    api_key, customer_id, customer_key = SANDBOX_CREDENTIALS
    headers = {
        "x-api-key": api_key,
        "customer-id": customer_id,
        "customer-key": customer_key,
        "content-type": "application/json",
        "historical": "true",
    }
    started = time.perf_counter()
    with httpx.Client(base_url=base_url + "/", headers=headers, timeout=30) as client:
        for invoice in invoices:
            client.post("invoice", content=invoice.payload)
    return time.perf_counter() - started


def row1(erp_url: str, folder: Path, invoices: int) -> list[Figure]:
    """Posting at the quota: naive loop, client at the quota, client at twice the quota."""
    with SandboxProcess(rate=QUOTA, latency_ms=LATENCY_MS) as sandbox:
        naive_invoices = payloads(erp_url, max(20, invoices // 6))
        naive_loop(sandbox.base_url, naive_invoices)
        naive = Share.of(sandbox.counts(), burst=0)
        shares = {}
        for factor in (1, 2):
            sandbox.reset()
            settings = settings_for(
                sandbox.base_url, erp_url, folder, rate=QUOTA * factor, staging=f"q{factor}.db"
            )
            with store_for(settings) as store:
                sync(settings, store)
            shares[factor] = Share.of(sandbox.counts(), burst=int(QUOTA))
    return [
        _quota_figure("1a", "client at the quota", shares[1], naive, None),
        _quota_figure("1b", "client at 2x the quota", shares[2], naive, QUOTA_TARGET),
    ]


def row8(erp_urls: tuple[str, str], folder: Path, invoices: int) -> list[Figure]:
    """The remembered rate: at twice the quota, a first run re-probing (no memory in its
    staging), then a run over other invoices starting from what the first learned."""
    with SandboxProcess(rate=QUOTA, latency_ms=LATENCY_MS) as sandbox:
        shares = []
        for erp_url in erp_urls:
            sandbox.reset()
            settings = settings_for(
                sandbox.base_url, erp_url, folder, rate=2 * QUOTA, staging="remember.db"
            )
            with store_for(settings) as store:
                sync(settings, store)
            shares.append(Share.of(sandbox.counts(), burst=int(QUOTA)))
    fresh, remembered = shares
    counts, _ = two_workers(
        erp_urls[0], folder / "shared", quota=QUOTA, latency_ms=LATENCY_MS, rate=2 * QUOTA
    )
    shared = Share.of(counts, burst=int(QUOTA))
    what = f"Posting, quota {QUOTA:.0f}/s + {LATENCY_MS:.0f} ms, client at 2x, {invoices:,} each"
    first = f"{what}: first run (nothing remembered)"
    then = f"{what}: next run, from the remembered rate"
    both = (
        f"Posting, quota {QUOTA:.0f}/s + {LATENCY_MS:.0f} ms: two workers at 2x, one global "
        f"limit, PostgreSQL staging, {invoices:,} between them"
    )
    return [
        _memory_figure("8a", first, fresh, None, FRESH_TARGET),
        _memory_figure("8b", then, remembered, fresh, REMEMBERED_TARGET),
        _memory_figure("8c", both, shared, fresh, SHARED_TARGET, "one worker (8a)"),
    ]


def _memory_figure(
    row: str,
    what: str,
    share: Share,
    baseline: Share | None,
    target: tuple[float, float],
    baseline_is: str = "first run",
) -> Figure:
    ratio = share.rate / QUOTA
    least, most_429 = target
    return Figure(
        row=row,
        what=what,
        measured=share.cell(),
        baseline=f"{baseline_is}: {baseline.cell()}" if baseline else "—",
        ratio=ratio,
        target=f">= {least:.2f} of the quota, < {most_429:.1%} 429s",
        met=ratio >= least and share.throttled < most_429,
        detail={"run": _share(share), "first_run": _share(baseline) if baseline else None},
    )


def _quota_figure(
    row: str, config: str, share: Share, naive: Share, target: float | None
) -> Figure:
    ratio = share.rate / QUOTA
    return Figure(
        row=row,
        what=f"Posting, quota {QUOTA:.0f}/s + {LATENCY_MS:.0f} ms latency: {config}",
        measured=share.cell(),
        baseline=f"naive sequential httpx loop: {naive.cell()}",
        ratio=ratio,
        target=f">= {target:.2f} of the quota" if target else "—",
        met=None if target is None else ratio >= target,
        detail={"pipeline": _share(share), "naive": _share(naive)},
    )


def _share(share: Share) -> dict[str, object]:
    return {"rate": share.rate, "throttled": share.throttled, "requests": share.requests}


def row2(erp_url: str, folder: Path, concurrency: int) -> Figure:
    """Raw posting speed, no quota: a full backfill ÷ wrk's ceiling on the same sandbox."""
    with SandboxProcess() as sandbox:
        return _raw(erp_url, folder, sandbox, concurrency)


def _raw(erp_url: str, folder: Path, sandbox: SandboxProcess, concurrency: int) -> Figure:
    (first,) = payloads(erp_url, 1)
    wall = ceiling(sandbox.base_url, first.payload, first.key)
    sandbox.reset()
    settings = settings_for(sandbox.base_url, erp_url, folder, rate=10_000, concurrency=concurrency)
    with store_for(settings) as store:
        run = sync(settings, store)
    counts = sandbox.counts()
    acked = int(run.summary.counts["created"] + run.summary.counts["updated"])
    rate = counts.steady_rate()
    ratio = rate / wall.rate if wall.rate else 0.0
    return Figure(
        row="2",
        what="Raw posting, no quota: invoices/s of a backfill ÷ the sandbox's ceiling",
        measured=f"{rate:,.0f} invoices/s ({acked:,} in {run.seconds:.1f} s end to end)",
        baseline=f"wrk (1 thread, 32 connections): {wall.rate:,.0f} requests/s",
        ratio=ratio,
        target=f">= {RAW_TARGET} of the ceiling",
        met=ratio >= RAW_TARGET,
        detail={
            "pipeline_rate": rate,
            "acked": acked,
            "run_seconds": run.seconds,
            "wrk_rate": wall.rate,
            "wrk_errors": wall.errors,
            "responses": counts.responses,
        },
    )
