"""RunSummary: what a run did, for the summary table, ``--json`` and Prefect artifacts."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

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
    failures: list[RowFailure] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """AppZen requests per second while posting."""
        return self.counts["requests"] / self.posting_s if self.posting_s > 0 else 0.0

    @property
    def failed(self) -> int:
        """Invoices that failed in any stage of this run."""
        return sum(self.counts[k] for k in FAILED_KEYS)

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
        }


FAILED_KEYS = (
    "failed_mapping",
    "failed_validation",
    "failed_appzen",
    "failed_retries",
    "failed_status_sync",
)
