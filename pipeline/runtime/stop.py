"""Stop requests from outside the process: SIGTERM (an operator's ``kill``, a Prefect cancel,
systemd or Kubernetes shutting down) asks every run in the process to stop cleanly.

A run listens while it runs (:func:`listening`); :func:`sigterm_stops_runs` turns SIGTERM into a
stop request for the runs of the event loop it wraps (the CLI wraps each run with it). A run that
hears one stops taking work, lets the requests already out finish, records what it did, frees
its claims and closes itself ``cancelled`` (:class:`~pipeline.errors.RunCancelled`). A request
that comes while no run listens is kept until the wrapped work ends, so a run that starts
afterwards within it stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
Listener = Callable[[str], None]
"""Called with the reason (``SIGTERM received``) on the listener's event loop."""

GRACE_S = 10.0
"""Seconds a stopping run lets its requests already out finish before it abandons them (they
stay pending); well within the 30 s systemd and Kubernetes wait before SIGKILL."""

_lock = threading.Lock()
_listeners: list[Listener] = []
_requested: list[str] = []


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Call ``listener`` on a stop request while the block runs (at once if one came already)."""
    with _lock:
        _listeners.append(listener)
        earlier = list(_requested)
    if earlier:
        listener(earlier[0])
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)


def request_stop(reason: str) -> None:
    """Ask every listening run to stop (and every run started later in this process)."""
    with _lock:
        if not _requested:
            _requested.append(reason)
        listeners = list(_listeners)
    for listener in listeners:
        listener(reason)


def requested() -> str | None:
    """The reason of the stop request this process received, if any."""
    with _lock:
        return _requested[0] if _requested else None


async def sigterm_stops_runs(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` with SIGTERM turned into :func:`request_stop`; afterwards the handler
    there was before (the default action, ending the process at once, or a Prefect flow
    engine's) is back and the request forgotten. Off the main thread, where no signal handler
    can be set, ``work`` runs as it is."""
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, request_stop, "SIGTERM received")
    except (ValueError, RuntimeError):  # not the main thread's loop
        return await work
    try:
        return await work
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        with _lock:
            _requested.clear()
