"""Following a run: the progress line (counts, current rate, done/total and ETA), and that line
logged at a steady interval off a terminal with one final line."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest

from pipeline.jobs.progress import RateWindow, RunProgress, logged_progress, progress_line
from pipeline.summary import RunSummary

DEADLINE_S = 10.0


def test_progress_line_shows_current_rate_and_eta() -> None:
    counts = Counter(extracted=6, created=3, updated=1, failed_mapping=1, requests=4)
    line = progress_line("retry_failed", counts, elapsed=2.0, rate=2.5, total=10)
    assert line.startswith("extracted 6 · sent 4 · unchanged 0 · failed 1")
    assert "2.5 requests/s" in line
    assert "5/10 · ETA 2 s" in line  # 5 done in 2 s: 5 more take 2 s
    assert "ETA" not in progress_line("sync", counts, elapsed=2.0, rate=2.5, total=None)


def test_a_status_sync_line_counts_pushes() -> None:
    counts = Counter(pushed=7, pushed_error=1, failed_status_sync=2, requests=10)
    assert progress_line("status_sync", counts, 3.0, 3.3, None) == (
        "sent 8 · failed 2 · 3.3 requests/s · 3 s"
    )


def test_rate_window_forgets_old_requests() -> None:
    window = RateWindow(window_s=5.0)
    assert window.add(0.0, 0) == 0.0
    assert window.add(1.0, 100) == 100.0
    for second in range(2, 11):
        rate = window.add(float(second), 100)  # nothing more sent
    assert rate == 0.0


def test_run_progress_names_the_run_and_follows_its_summary() -> None:
    moments = iter([0.0, 4.0, 8.0])
    progress = RunProgress(total=8, clock=lambda: next(moments))
    assert progress.line() == "starting…"
    summary = RunSummary(None, "sample_erp", "sync", False, False)
    progress(summary)  # the start
    summary.run_id = 7
    summary.counts.update(extracted=4, created=4, requests=4)
    assert progress.line() == (
        "sync run 7 (sample_erp): extracted 4 · sent 4 · unchanged 0 · failed 0 · "
        "1.0 requests/s · 4 s · 4/8 · ETA 4 s"
    )
    assert progress.batches == 0


def test_batches_are_counted_and_announced_when_asked() -> None:
    said: list[str] = []
    progress = RunProgress(on_batch=said.append)
    summary = RunSummary(3, "m", "sync", False, False, counts=Counter(extracted=2))
    progress(summary)
    progress(summary)
    progress(summary)
    assert progress.batches == 2
    assert [line.split(":")[0] for line in said] == ["batch 1", "batch 2"]


def _records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.progress"]


def test_lines_come_at_the_interval_and_once_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "test.progress")
    summary = RunSummary(5, "m", "sync", False, False)
    with logged_progress(logging.getLogger("test.progress"), 0.02) as progress:
        progress(summary)
        deadline = time.monotonic() + DEADLINE_S
        while len(_records(caplog)) < 3 and time.monotonic() < deadline:
            summary.counts["extracted"] += 1
            time.sleep(0.005)
    lines = _records(caplog)
    assert len(lines) >= 4, lines
    assert all(line.startswith("sync run 5 (m): extracted ") for line in lines)
    assert lines[-1].endswith(" · done")
    assert not any(line.endswith(" · done") for line in lines[:-1])


def test_nothing_is_logged_before_the_run_starts_nor_left_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "test.progress")
    with logged_progress(logging.getLogger("test.progress"), 0.01):
        time.sleep(0.05)
    assert _records(caplog) == []
    assert not [t for t in threading.enumerate() if t.name == "progress-log"]


def test_a_run_ended_by_an_exception_says_stopped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "test.progress")
    summary = RunSummary(9, "m", "sync", False, False, counts=Counter(extracted=3))

    def interrupted_run() -> None:
        with logged_progress(logging.getLogger("test.progress"), 60) as progress:
            progress(summary)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_run()
    [line] = _records(caplog)
    assert line.startswith("sync run 9 (m): extracted 3 · ")
    assert line.endswith(" · stopped")
