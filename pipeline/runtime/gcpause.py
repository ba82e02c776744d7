"""Pausing Python's cyclic garbage collector around bulk object creation in C code.

Making a chunk's thousands of row tuples (the mapping's row layout) starts a collection every few
hundred tuples, and each walks the chunk's freshly made column lists again (mapping ~14 % faster
without that, benchmarks/README.md). The tuples hold no reference cycles; the collector sees them
later, as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (keep it short: one bulk operation).

    A collector that was already paused (by the caller or another thread) stays paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
