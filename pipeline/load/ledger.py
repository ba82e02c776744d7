"""What a sync run tells the open-failures ledger beyond its failures: which invoices it delivered
(acknowledged, or found unchanged since AppZen's acknowledgement) and, for a run that re-read
given keys (retry-failed), which are gone from the source.

The run reads the ledger's live keys (open or dismissed) once at its start, and closes entries
only among those: a run over invoices that never failed costs the ledger nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence, Set
from typing import Literal

from pipeline.failures import InvoiceFacts, RowFailure
from pipeline.mapping.results import MappedInvoice, RejectedInvoice
from pipeline.staging import StagingStore


class LedgerTracker:
    """One run's view of the ledger of its mapping; batches call it from worker threads."""

    def __init__(self, store: StagingStore, mapping: str) -> None:
        self._store = store
        self._mapping = mapping
        self._live: set[str] = set()
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.run_id: int | None = None

    def load(self, run_id: int) -> None:
        """Read the live keys at the start of run ``run_id`` (blocking: call it in a thread)."""
        self.run_id = run_id
        self._live = self._store.ledger.live_keys(self._mapping)

    @property
    def any_live(self) -> bool:
        """True when the ledger held an entry of this mapping that is not closed yet."""
        return bool(self._live)

    def saw(self, keys: Iterable[str]) -> None:
        """The run read these keys from the source."""
        with self._lock:
            self._seen.update(keys)

    def close(self, keys: Set[str], why: Literal["delivered", "gone"]) -> None:
        """Close the live entries among ``keys`` (blocking: call it in a thread)."""
        with self._lock:
            closing = keys & self._live
            self._live -= closing
        if closing:
            self._store.ledger.close(self._mapping, closing, why, self.run_id)

    def close_unseen(self, keys: Set[str]) -> None:
        """After a run that re-read ``keys`` to its end: those it did not find are gone."""
        with self._lock:
            unseen = set(keys) - self._seen
        self.close(unseen, "gone")


def failed_facts(
    batch: Sequence[MappedInvoice | RejectedInvoice], sent_failures: Sequence[RowFailure]
) -> dict[str, InvoiceFacts]:
    """What names each failed invoice of ``batch``: read by the mapping (rejected) or from the
    payload AppZen refused (read only for those)."""
    refused = {f.source_key for f in sent_failures}
    facts: dict[str, InvoiceFacts] = {}
    for result in batch:
        known = result.facts if isinstance(result, RejectedInvoice) else None
        if isinstance(result, MappedInvoice) and result.key in refused:
            known = result.facts
        if result.key and known is not None:
            facts[result.key] = known
    return facts
