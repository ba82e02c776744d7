"""A sync job opens and checks its sources off the event loop: a slow source (a far database, a
locked file share, a slow API) never stalls the other jobs posting in the same process."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import pytest

from pipeline.extract import registry
from pipeline.extract.base import Chunk, Source
from pipeline.extract.registry import SourceContext
from pipeline.extract.specs import SqlSourceSpec
from pipeline.load.sync import SyncJob
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import assert_counts_add_up, options

DEADLINE_S = 30.0


class _Gated:
    """A source whose column check (its first query) waits until the test releases it."""

    def __init__(self, source: Source, started: threading.Event, release: threading.Event) -> None:
        self._source = source
        self._started = started
        self._release = release
        self.threads: list[threading.Thread] = []

    def describe(self) -> str:
        return self._source.describe()

    def columns(self) -> list[str]:
        self.threads.append(threading.current_thread())
        self._started.set()
        if not self._release.wait(DEADLINE_S):
            raise AssertionError("the event loop stalled while the source was being opened")
        return self._source.columns()

    def chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        return self._source.chunks(params)


async def test_a_slow_source_opens_while_the_event_loop_keeps_running(
    settings: Settings, store: StagingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    opened: list[_Gated] = []
    open_sql = registry.OPENERS[SqlSourceSpec]

    def open_slowly(spec: SqlSourceSpec, context: SourceContext) -> Source:
        opened.append(_Gated(open_sql(spec, context), started, release))
        return opened[-1]

    tables = {**registry.OPENERS, SqlSourceSpec: open_slowly}
    monkeypatch.setattr(registry, "OPENERS", MappingProxyType(tables))
    job = asyncio.ensure_future(SyncJob(options(dry_run=True), settings, store=store).run())

    assert await asyncio.to_thread(started.wait, DEADLINE_S), "the source was never opened"
    ticks = 0
    for _ in range(3):  # the loop runs other coroutines while the source is still opening
        await asyncio.sleep(0)
        ticks += 1
    release.set()
    summary = await job

    assert ticks == 3
    assert summary.status == "succeeded"
    assert summary.counts["extracted"] > 0
    assert_counts_add_up(summary)
    [source] = opened
    assert source.threads, "the columns were checked"
    assert threading.main_thread() not in source.threads
