"""read_ahead: a source read on its own thread, handed over in order, bounded, closed on time."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Generator

import pytest

from pipeline.extract.base import SourceUnavailable
from pipeline.runtime.prefetch import read_ahead

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


class Counting:
    """A source of ``count`` items that records how far it was read and whether it was closed;
    ``fail_at`` raises a SourceUnavailable instead of that item."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.read = 0
        self.closed = threading.Event()
        self.threads: set[str] = set()
        self.contexts: set[str] = set()
        self._items = self._generate(count, fail_at)

    def _generate(self, count: int, fail_at: int | None) -> Generator[int, None, None]:
        try:
            for index in range(count):
                self.threads.add(threading.current_thread().name)
                self.contexts.add(_who.get())
                if index == fail_at:
                    raise SourceUnavailable(f"lost after {index} items")
                self.read += 1
                yield index
        finally:
            self.closed.set()

    def __iter__(self) -> Counting:
        return self

    def __next__(self) -> int:
        return next(self._items)

    def close(self) -> None:
        self._items.close()


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_every_item_in_order(depth: int) -> None:
    source = Counting(50)
    assert list(read_ahead(source, depth)) == list(range(50))
    assert source.closed.is_set()


def test_reads_on_its_own_thread_in_the_callers_context() -> None:
    source = Counting(3)
    token = _who.set("the run")
    try:
        assert list(read_ahead(source, 1, name="reader-x")) == [0, 1, 2]
    finally:
        _who.reset(token)
    assert source.threads == {"reader-x"}
    assert source.contexts == {"the run"}


@pytest.mark.parametrize("depth", [1, 2])
def test_reads_at_most_depth_ahead(depth: int) -> None:
    source = Counting(100)
    items = read_ahead(source, depth)
    assert next(items) == 0
    # one in the caller's hands, `depth` waiting, one more read and held until there is room
    _until(lambda: source.read == depth + 2)
    for _ in range(20):  # nothing more, however long it is left alone
        time.sleep(0.005)
        assert source.read == depth + 2
    items.close()


def test_a_failure_comes_after_every_item_read_before_it() -> None:
    source = Counting(10, fail_at=6)
    got: list[int] = []
    with pytest.raises(SourceUnavailable, match="lost after 6 items"):
        got.extend(read_ahead(source, 2))
    assert got == [0, 1, 2, 3, 4, 5]
    assert source.closed.is_set()


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    source = Counting(1_000)
    items = read_ahead(source, 1, name="reader-closed")
    assert next(items) == 0
    items.close()
    assert source.closed.is_set()  # closed before close() returned
    assert not any(thread.name == "reader-closed" for thread in threading.enumerate())
    assert source.read < 10


def test_a_negative_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="0 or more"):
        next(read_ahead(iter([1]), -1))
