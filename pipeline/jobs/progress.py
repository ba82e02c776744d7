"""Following a run while it goes: its progress line, and that line logged at a steady interval.

A job calls its ``on_progress`` with the run's :class:`~pipeline.summary.RunSummary` once at the
start and after every batch; :class:`RunProgress` is such a callback. It keeps the summary and
says, at any moment, where the run is (:meth:`RunProgress.line`): extracted, sent, unchanged,
failed, the current rate, elapsed time and, when the number of invoices in scope is known, how
many are done and the time remaining.

Off a terminal (cron, a Prefect worker), :func:`logged_progress` logs that line at INFO every
``interval`` seconds from a background thread, plus one final line when the run ends, so a cron
mail or a flow-run log shows a run moving; with ``per_batch`` it also logs one line per batch
(``-v``). On a terminal the CLI shows the same line live instead. Nothing here prints a secret:
lines carry counts, the flow and the mapping's name, scrubbed all the same.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping

from pipeline.redact import scrub
from pipeline.summary import RunSummary

DONE_KEYS = (
    "created",
    "updated",
    "unchanged",
    "rejected_unchanged",
    "busy",
    "failed_mapping",
    "failed_validation",
    "failed_check",
    "failed_appzen",
    "failed_retries",
)
"""Counts that together say how many in-scope invoices a run has finished (for the ETA)."""
SENT_KEYS = ("created", "updated", "pushed", "pushed_error")
"""Counts of what reached AppZen (invoices posted, statuses pushed)."""
FAILED_PREFIX = "failed_"

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


class RateWindow:
    """Requests per second over the last ``window_s`` seconds: the *current* rate."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def add(self, moment: float, requests: int) -> float:
        """Record the request count at ``moment``; the rate over the window ending there."""
        with self._lock:
            self._samples.append((moment, requests))
            while len(self._samples) > 2 and moment - self._samples[1][0] >= self.window_s:
                self._samples.popleft()
            first_moment, first_requests = self._samples[0]
        span = moment - first_moment
        return (requests - first_requests) / span if span > 0 else 0.0


def progress_line(
    flow: str, counts: Mapping[str, int], elapsed: float, rate: float, total: int | None
) -> str:
    """``extracted 1,500 · sent 1,200 · unchanged 100 · failed 12 · 18.5 requests/s · 80 s`` (a
    status-sync: ``sent 30 · failed 0 · …``, statuses pushed) and, when ``total`` (invoices in
    scope) is known, ``· 1,312/2,000 · ETA 42 s``."""
    sent = sum(counts.get(k, 0) for k in SENT_KEYS)
    failed = sum(v for k, v in counts.items() if k.startswith(FAILED_PREFIX))
    line = f"sent {sent:,} · failed {failed:,}"  # status-sync: statuses pushed
    if flow != "status_sync":
        extracted, unchanged = counts.get("extracted", 0), counts.get("unchanged", 0)
        line = (
            f"extracted {extracted:,} · sent {sent:,} · unchanged {unchanged:,} · failed {failed:,}"
        )
    line += f" · {rate:.1f} requests/s · {elapsed:.0f} s"
    if total:
        done = min(sum(counts.get(k, 0) for k in DONE_KEYS), total)
        speed = done / max(elapsed, 1e-6)
        eta = f"ETA {(total - done) / speed:.0f} s" if speed > 0 else "ETA …"
        line += f" · {done:,}/{total:,} · {eta}"
    return line


class RunProgress:
    """A job's ``on_progress``: keeps the run's summary and says where it is at any moment.
    ``total`` is the number of invoices in scope, when known (it adds done/total and an ETA);
    ``on_batch`` is called with the line after every batch (the ``-v`` per-batch lines)."""

    def __init__(
        self,
        total: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_batch: Callable[[str], None] | None = None,
    ) -> None:
        self.total = total
        self.summary: RunSummary | None = None
        self.batches = 0
        self._clock = clock
        self._started = clock()
        self._window = RateWindow()
        self._window.add(self._started, 0)
        self._on_batch = on_batch

    def __call__(self, summary: RunSummary) -> None:
        """The job's callback: at the start (first call), then after each batch."""
        first = self.summary is None
        self.summary = summary
        if not first:
            self.batches += 1
            if self._on_batch is not None:
                self._on_batch(f"batch {self.batches}: {self.line()}")

    def line(self) -> str:
        """Where the run is now: ``sync run 7 (sample_erp): extracted … · ETA 42 s``."""
        summary = self.summary
        if summary is None:
            return "starting…"
        counts = summary.counts_snapshot()
        now = self._clock()
        rate = self._window.add(now, counts.get("requests", 0))
        run = f"run {summary.run_id}" if summary.run_id is not None else "dry run"
        head = f"{summary.flow} {run} ({summary.mapping})"
        body = progress_line(summary.flow, counts, now - self._started, rate, self.total)
        return scrub(f"{head}: {body}")

    def __rich__(self) -> str:
        """A live display (rich) asks again at every refresh, so time and ETA keep moving."""
        return self.line()


@contextlib.contextmanager
def logged_progress(
    logger: Logger,
    interval: float,
    total: int | None = None,
    *,
    per_batch: bool = False,
) -> Iterator[RunProgress]:
    """A :class:`RunProgress` whose line is logged at INFO on ``logger`` every ``interval``
    seconds while the block runs, and once more when it ends (``… · done``, or ``… · stopped``
    when it ends on an exception); with ``per_batch`` also after every batch. Yields the job's
    ``on_progress`` callback."""
    progress = RunProgress(total, on_batch=logger.info if per_batch else None)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            if progress.summary is not None:
                logger.info(progress.line())

    ticker = threading.Thread(target=tick, name="progress-log", daemon=True)
    ticker.start()
    ending = "stopped"
    try:
        yield progress
        ending = "done"
    finally:
        stop.set()
        ticker.join()
        if progress.summary is not None:
            logger.info(f"{progress.line()} · {ending}")
