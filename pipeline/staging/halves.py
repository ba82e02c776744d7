"""The base of the store's halves (audit, ledger): transactions borrowed from the store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

Transact = Callable[[str, Callable[[Connection], Any]], Any]
"""``transact(what, work)``: run ``work`` in one store transaction (retried on deadlock);
``what`` names it in errors."""


class StoreHalf:
    """A part of :class:`~pipeline.staging.StagingStore`: every method is one transaction of
    the store, read or written through the store's own ``read``/``write``, at its clock."""

    def __init__(self, read: Transact, write: Transact, now: Callable[[], datetime]) -> None:
        self._read, self._write, self._now = read, write, now
