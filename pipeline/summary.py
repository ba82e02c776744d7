"""RunSummary: what a run did, for the summary table, ``--json`` and Prefect artifacts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline.errors import BudgetSpent, RemoteUnreachable, RunCancelled
from pipeline.failures import RowFailure


@dataclass(slots=True)
class RunSummary:
    """What a run did, for the summary table, ``--json`` and Prefect artifacts."""

    run_id: int | None
    mapping: str
    flow: str
    historical: bool
    dry_run: bool
    status: str = "running"
    counts: Counter[str] = field(default_factory=Counter)
    started_at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    posting_s: float = 0.0
    watermark: str | None = None
    fatal: str | None = None
    reason: str | None = None
    """Why the status is what it is, when not plain success (``partial``: the holders)."""
    outage: bool = False
    """``fatal`` is an outage (the circuit breaker tripped: CLI exit code 3), not an answer a
    person must act on (exit code 2)."""
    budget_spent: bool = False
    """``fatal`` is the day's AppZen budget, spent (CLI exit code 5): the run resumes after the
    next day boundary."""
    cancelled: bool = False
    """``fatal`` is a stop request (SIGTERM: CLI exit code 143): the run stopped cleanly."""
    _first_post: float | None = None
    _last_post: float | None = None
    failures: list[RowFailure] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    planned: list[dict[str, object]] = field(default_factory=list)
    """What a dry run would send, one entry per request (status-sync: uuid and body)."""
    at_risk: dict[str, str] = field(default_factory=dict)
    """The total of the invoices that failed, per currency (exact decimal text), as far as their
    totals could be read; set with the reports."""
    at_risk_unknown: int = 0
    """Invoices that failed without a readable total or currency."""

    def stop(self, error: Exception) -> None:
        """Record the error that stopped the run: its one line, and whether it is an outage."""
        self.fatal = str(error)
        self.outage = isinstance(error, RemoteUnreachable)
        self.budget_spent = isinstance(error, BudgetSpent)
        self.cancelled = isinstance(error, RunCancelled)

    def add_failures(self, failures: list[RowFailure]) -> None:
        """Keep the first :data:`KEPT_FAILURES` for display; staging keeps them all."""
        room = KEPT_FAILURES - len(self.failures)
        if room > 0:
            self.failures.extend(failures[:room])

    def posted(self, started: float, ended: float) -> None:
        """Widen the posting window (batches overlap, so durations are not added up)."""
        self._first_post = min(self._first_post or started, started)
        self._last_post = max(self._last_post or ended, ended)
        self.posting_s = self._last_post - self._first_post

    @property
    def rate(self) -> float:
        """AppZen requests per second while posting."""
        return self.counts["requests"] / self.posting_s if self.posting_s > 0 else 0.0

    def counts_snapshot(self) -> dict[str, int]:
        """A copy of the counts, safe to take from another thread (the heartbeat's) while the
        run's event loop adds to them."""
        for _ in range(10):
            try:
                return dict(self.counts)
            except RuntimeError:  # a new key was added during the copy: copy again
                continue
        return {}

    @property
    def failed(self) -> int:
        """Invoices that failed in any stage of this run."""
        return failed_invoices(self.counts)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view (no secrets: counts, ids, timings)."""
        return {
            "run_id": self.run_id,
            "mapping": self.mapping,
            "flow": self.flow,
            "historical": self.historical,
            "dry_run": self.dry_run,
            "status": self.status,
            "counts": dict(sorted(self.counts.items())),
            "failed": self.failed,
            "duration_s": round(self.duration_s, 3),
            "rate_per_s": round(self.rate, 2),
            "watermark": self.watermark,
            "fatal": self.fatal,
            "reason": self.reason,
            "outage": self.outage,
            "budget_spent": self.budget_spent,
            "cancelled": self.cancelled,
            "reports": dict(self.reports),
            "at_risk": dict(self.at_risk),
            "at_risk_unknown": self.at_risk_unknown,
            **({"planned": list(self.planned)} if self.dry_run else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RunSummary:
        """Rebuild a summary from :meth:`as_dict` (a flow's return value)."""
        counts = data.get("counts")
        summary = cls(
            run_id=data.get("run_id"),  # type: ignore[arg-type]
            mapping=str(data.get("mapping", "")),
            flow=str(data.get("flow", "")),
            historical=bool(data.get("historical")),
            dry_run=bool(data.get("dry_run")),
            status=str(data.get("status", "")),
            counts=Counter(counts if isinstance(counts, dict) else {}),
            duration_s=float(data.get("duration_s", 0.0)),  # type: ignore[arg-type]
            watermark=data.get("watermark"),  # type: ignore[arg-type]
            fatal=data.get("fatal"),  # type: ignore[arg-type]
            reason=data.get("reason"),  # type: ignore[arg-type]
            outage=bool(data.get("outage")),
            budget_spent=bool(data.get("budget_spent")),
            cancelled=bool(data.get("cancelled")),
        )
        rate = float(data.get("rate_per_s", 0.0))  # type: ignore[arg-type]
        summary.posting_s = summary.counts["requests"] / rate if rate else 0.0
        reports = data.get("reports")
        summary.reports = dict(reports) if isinstance(reports, dict) else {}
        at_risk = data.get("at_risk")
        summary.at_risk = dict(at_risk) if isinstance(at_risk, dict) else {}
        summary.at_risk_unknown = int(data.get("at_risk_unknown", 0))  # type: ignore[call-overload]
        return summary


KEPT_FAILURES = 1000
"""Failures a summary keeps in memory for display; every failure is in staging and the report."""

FAILED_KEYS = (
    "failed_mapping",
    "failed_validation",
    "failed_check",
    "failed_appzen",
    "failed_retries",
    "failed_status_sync",
    "failed_audit",
    "failed_merchant",
    "failed_crm",
)


def failed_invoices(counts: Mapping[str, int]) -> int:
    """Invoices that failed in any stage, from a run's counts."""
    return sum(counts.get(key, 0) for key in FAILED_KEYS)


def shown_status(status: str, failed: int) -> str:
    """A run's status as people read it: a run that succeeded but left invoices failed says
    ``succeeded with 3 failed invoices`` (shown amber), never a plain ``succeeded``."""
    if status == "succeeded" and failed:
        return f"succeeded with {failed:,} failed invoice{'' if failed == 1 else 's'}"
    return status
