"""Reading a source ahead on its own thread, so the database read overlaps the mapping.

A SQL source spends much of its time waiting: on the server running the query, on the network,
in the driver's C code (psycopg and PyMySQL release the GIL while they wait on the socket). The
mapping is Python and holds the GIL. :func:`read_ahead` runs the source's iterator on a thread
of its own and hands its chunks over through a queue of ``depth`` chunks, so while the mapping
works on one chunk the next is being fetched; memory stays bounded (at most ``depth`` chunks
waiting, one being fetched, one being mapped).

Nothing changes for the reader of the chunks: the same chunks in the same order, then the
source's own error (a :class:`~pipeline.extract.base.SourceError`, raised where the stream
stopped, after every chunk read before it). Closing the generator early stops the thread and
closes the source's iterator (its cursor and connection) before it returns.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Final, TypeVar

T = TypeVar("T")

READ_AHEAD: Final = 0
"""Chunks a source reads ahead of its reader by default: none (read in the caller's thread).
One chunk ahead measured ~9 % faster on a loaded machine but made a PostgreSQL dry-run's peak
RSS grow with the run (10,000 -> 100,000 invoices: 313 -> 440 MiB, 1.41, against 300 -> 344
MiB, 1.15, without; the reader thread's own malloc arena suspected), which breaks row 4's
<= 1.5; ``SqlSource(read_ahead=1)`` still reads ahead."""
_POLL_SECONDS: Final = 0.1
"""How often a reader blocked on a full queue looks whether the chunks' reader has gone."""


class _End:
    """The source is exhausted (``error`` None) or failed with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def read_ahead(
    source: Iterator[T], depth: int = READ_AHEAD, *, name: str = "appzen-read-ahead"
) -> Generator[T, None, None]:
    """``source``'s items in order, read on a thread named ``name`` up to ``depth`` ahead
    (``depth`` 0: read in the caller's thread, nothing ahead)."""
    if depth < 0:
        raise ValueError(f"read-ahead depth must be 0 or more, not {depth}")
    if depth == 0:
        try:
            yield from source
        finally:
            _close(source)
        return
    handed: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                handed.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False

    def read() -> None:
        try:
            for item in source:
                if not put(item):
                    return
                del item  # the reader of the queue holds it now, not this frame
            put(_End(None))
        except BaseException as error:  # noqa: BLE001 (handed over: raised in the reader's thread)
            put(_End(error))
        finally:
            _close(source)

    context = contextvars.copy_context()  # a Prefect run's context, logging's, …
    thread = threading.Thread(target=context.run, args=(read,), name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = handed.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
            del item
    finally:
        stop.set()
        if thread is not threading.current_thread():  # a collection may close it anywhere
            thread.join()


def _close(source: Iterator[object]) -> None:
    close = getattr(source, "close", None)
    if close is not None:
        close()
