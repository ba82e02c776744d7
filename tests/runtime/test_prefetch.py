"""read_ahead: the items in order, the producer's error raised where it happened, an early close
stops the worker and closes the source."""

from __future__ import annotations

import threading
from collections.abc import Generator

import pytest

from pipeline.runtime.prefetch import read_ahead


def test_every_item_comes_in_order_from_another_thread() -> None:
    threads: set[str] = set()

    def items() -> Generator[int, None, None]:
        for n in range(10):
            threads.add(threading.current_thread().name)
            yield n

    assert list(read_ahead(items(), depth=2)) == list(range(10))
    assert threads == {"read-ahead"}


def test_the_producers_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Generator[int, None, None]:
        yield 1
        raise ValueError("chunk 2 is unreadable")

    ahead = read_ahead(items())
    assert next(ahead) == 1
    with pytest.raises(ValueError, match="chunk 2 is unreadable"):
        next(ahead)


def test_closing_early_stops_the_worker_and_closes_the_source() -> None:
    closed = threading.Event()

    def items() -> Generator[int, None, None]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    ahead = read_ahead(items(), depth=1)
    assert next(ahead) == 0
    ahead.close()
    assert closed.is_set()
    assert not any(t.name == "read-ahead" for t in threading.enumerate())
