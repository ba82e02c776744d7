"""One run's invoice keys: every finished invoice passes here before it leaves the engine.

An invoice whose key was seen before in the run is refused: the same exact key after other
invoices is a ``contiguity`` failure (its rows are split), a key that differs from an earlier one
only by whitespace, case or control characters is a ``key_collision`` (two documents that look
alike). Each message names both source locations.

So that *neither* document is sent, results wait in a queue of :data:`HOLD_BACK` invoices before
they leave: when the earlier invoice is still waiting it is refused too. An ``ORDER BY`` on the key
puts look-alike keys and split rows next to each other, well inside the queue; farther apart, the
earlier invoice has already gone on, and the later one's message says so. When the source fails
part way, the whole invoices waiting go on before the error (as far as the run got, an invoice
farther back than the queue would have gone on anyway): a run stopped by a bad row or a lost
connection still delivers what it read before it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.mapping.grouping import Group
from pipeline.mapping.keys import Locations, look_alike
from pipeline.mapping.rejections import key_failure
from pipeline.mapping.results import RejectedInvoice, Result, Streamed
from pipeline.mapping.seen import FirstSeen

HOLD_BACK = 1_000
"""Invoices a result waits before it leaves the engine (a few MB of payloads at most)."""

_HINT_COLLISION = (
    "give each document its own key in the ERP (the key is sent as invoice_id); if they are one "
    "document, declare the normalisation in the mapping (`key_normalisation:`, "
    "mappings/README.md, Keys)"
)
_HINT_SPLIT = "list all rows of an invoice together: ORDER BY the invoice key"


@dataclass(slots=True)
class _Waiting:
    key: str | None
    alike: str | None
    location: str
    result: Streamed
    flagged: bool = False


class Identities:
    """The keys of one run (:class:`FirstSeen`) and the queue results wait in."""

    def __init__(self, key_column: str, hold_back: int = HOLD_BACK) -> None:
        self._key_column = key_column
        self._hold_back = hold_back
        self._seen = FirstSeen()
        self._where = Locations()
        self._queue: deque[_Waiting] = deque()

    def admit(self, group: Group, finish: Callable[[Group], Streamed]) -> Iterator[Streamed]:
        """Map ``group`` with ``finish`` when its key is new (else refuse it, and the earlier
        invoice too while it waits); yield the results that have waited long enough."""
        key = group.key
        alike = look_alike(key)
        first = self._seen.first(alike, key, self._where.code(*group.header_at))
        if first is None:
            result = finish(group)
        else:
            result = self._refuse(group, alike, same=first[0] == key, earlier=first[1])
        return self._push(_Waiting(key, alike, result.location, result))

    def other(self, result: Result) -> Iterator[Streamed]:
        """Queue a result that is no invoice of its own (orphan rows), in source order."""
        return self._push(_Waiting(result.key, None, result.location, result))

    def drain(self) -> Iterator[Streamed]:
        """Every result still waiting (the source is at its end)."""
        while self._queue:
            yield self._queue.popleft().result

    def _push(self, waiting: _Waiting) -> Iterator[Streamed]:
        self._queue.append(waiting)
        while len(self._queue) > self._hold_back:
            yield self._queue.popleft().result

    def _refuse(self, group: Group, alike: str, *, same: bool, earlier: int) -> RejectedInvoice:
        first_at = self._where.location(earlier)
        here = group.locate(-1)
        held = [w for w in self._queue if w.alike == alike]
        for waiting in held:
            if not waiting.flagged:
                waiting.flagged = True
                waiting.result = self._also_refused(waiting, group.key, here, same=same)
        if same:
            message = f"rows of invoice {group.key!r} are not together in the source: its first "
            message += (
                f"rows are at {first_at}; neither part is sent"
                if held
                else f"rows, at {first_at}, went on more than {self._hold_back} invoices earlier; "
                "this part is not sent"
            )
        else:
            like = f"the key {held[0].key!r} at {first_at}" if held else f"the key at {first_at}"
            message = (
                f"invoice key {group.key!r} differs from {like} only by whitespace, case or "
                "control characters (two documents that look alike); "
            )
            message += (
                "neither is sent"
                if held
                else f"that invoice went on more than {self._hold_back} invoices earlier, this "
                "one is not sent"
            )
        rule, hint = ("contiguity", _HINT_SPLIT) if same else ("key_collision", _HINT_COLLISION)
        failure = key_failure(
            group.key,
            here,
            rule=rule,
            message=message,
            hint=hint,
            key_column=self._key_column,
            value=group.key,
        )
        return RejectedInvoice(group.key, here, (failure,))

    def _also_refused(
        self, waiting: _Waiting, later: str, later_at: str, *, same: bool
    ) -> RejectedInvoice:
        if same:
            rule, hint = "contiguity", _HINT_SPLIT
            message = (
                f"more rows of invoice {waiting.key!r} come later in the source, at {later_at}, "
                "after other invoices; neither part is sent"
            )
        else:
            rule, hint = "key_collision", _HINT_COLLISION
            message = (
                f"invoice key {waiting.key!r} differs from the key {later!r} at {later_at} only "
                "by whitespace, case or control characters (two documents that look alike); "
                "neither is sent"
            )
        failure = key_failure(
            waiting.key,
            waiting.location,
            rule=rule,
            message=message,
            hint=hint,
            key_column=self._key_column,
            value=waiting.key,
        )
        result = waiting.result
        before = result.failures if isinstance(result, RejectedInvoice) else ()
        facts = result.facts if isinstance(result, RejectedInvoice) else None
        return RejectedInvoice(waiting.key, waiting.location, (failure, *before), facts)
