"""Read ahead: an iterator's next items produced on a thread of their own while the caller works.

A status read alternates two waits: the ERP's next chunk (a database round trip) and staging's
answer for the chunk in hand; a SQL source (when asked: ``SqlSource(read_ahead=N)``) waits on
the server and the driver's C code while the mapping holds the GIL. :func:`read_ahead` runs the
iterator on its own thread and hands its items over through a queue of ``depth`` items, so the
next is produced while the caller works on the last; memory stays bounded (``depth`` waiting,
one being produced).

Nothing changes for the consumer: the same items in the same order, then the producer's own
error, raised where the stream stopped, after every item produced before it. Closing the
generator early stops the thread and closes the iterator (a cursor, a connection) before it
returns.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import Final, TypeVar

T = TypeVar("T")

_POLL_SECONDS: Final = 0.1
"""How often a reader blocked on a full queue looks whether the chunks' reader has gone."""


class _End:
    """The source is exhausted (``error`` None) or failed with ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def read_ahead(
    source: Iterator[T], depth: int = 2, *, name: str = "read-ahead"
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
