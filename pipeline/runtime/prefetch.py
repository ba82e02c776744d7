"""Read ahead: an iterator's next items produced in a worker thread while the caller works.

A status read alternates two waits: the ERP's next chunk (a database round trip) and staging's
answer for the chunk in hand. :func:`read_ahead` lets the first run while the second does, in a
bounded queue (memory stays ``depth`` chunks), and hands the producer's exception to the
consumer at the point it happened.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


def read_ahead(items: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """``items``, produced up to ``depth`` ahead in a worker thread. Closing the generator early
    stops the worker after the item it is producing (and closes ``items`` there)."""
    box: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    break
                box.put(item)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            box.put(error)
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        box.put(_DONE)

    worker = threading.Thread(target=produce, name="read-ahead", daemon=True)
    worker.start()
    try:
        while (item := box.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.05)
        worker.join()
