"""Skipping unchanged sources: an invoice whose source hash is the one behind its acknowledged
payload is not mapped again (:meth:`pipeline.mapping.engine.MappingEngine.run_skipping`).

The engine asks :data:`AckedSources` once per chunk, with the chunk's keys, for the source hash
staging holds for each acknowledged, current payload; a group whose hash matches becomes an
:class:`~pipeline.mapping.results.UnchangedSource`, any other is mapped as usual and carries its
source hash (staged with its payload hash, so the next run can skip it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from pipeline.mapping.grouping import Group, Row
from pipeline.mapping.results import MappedInvoice, Streamed, UnchangedSource
from pipeline.mapping.sourcehash import SourceHasher

Span = tuple[str | None, int, int]
"""``(key, start, end)``: a run of rows of one key in a chunk."""
AckedSources = Callable[[list[str]], Mapping[str, str]]
"""Keys → the source hash behind each one's acknowledged payload (keys without one left out)."""


class Skipper:
    """The source hashes staging holds for the chunk in hand, and the decisions made on them."""

    def __init__(
        self, hasher: SourceHasher, acked: AckedSources, width: int, limit: int, *, record: bool
    ) -> None:
        self._hasher = hasher
        self._record = record
        """Whether mapped invoices carry their source hash (a dry run stages nothing: no need)."""
        self._acked = acked
        self._width = width
        """Raw values per row (the converted ones follow them)."""
        self._limit = limit
        self._known: Mapping[str, str] = {}

    def look_up(self, keys: Sequence[str | None], pending: Group | None) -> None:
        """Ask for the hashes of ``keys`` (a chunk's), keeping the one of the invoice still
        being collected from the chunk before."""
        wanted = sorted({key for key in keys if key is not None})
        found = dict(self._acked(wanted)) if wanted else {}
        if pending is not None and pending.key in self._known:
            found.setdefault(pending.key, self._known[pending.key])
        self._known = found

    def unchanged_spans(
        self, rows: Sequence[Row], spans: Sequence[Span], pending: Group | None
    ) -> dict[int, str]:
        """``start → source hash`` of the spans of a chunk's raw ``rows`` that are whole
        invoices with the hash staging holds: neither the invoice still collected from the
        chunk before, nor the last span (it may go on in the next chunk)."""
        found: dict[int, str] = {}
        last = len(rows)
        for key, start, end in spans:
            known = self._known.get(key) if key is not None else None
            if known is None or end == last or (start == 0 and pending and pending.key == key):
                continue
            kept = rows[start : min(end, start + self._limit)]
            if self._hasher.of_rows(kept, self._width, end - start - len(kept)) == known:
                found[start] = known
        return found

    def wrap(
        self,
        finish: Callable[[Group], Streamed],
        watermark: Callable[[Group], object | None],
    ) -> Callable[[Group], Streamed]:
        """``finish`` for groups not decided by :meth:`unchanged_spans`: unchanged ones come
        back as such; the mapped carry their source hash."""

        def finish_or_skip(group: Group) -> Streamed:
            source = None
            if (known := self._known.get(group.key)) is not None:
                source = self._hasher.of_rows(group.rows, self._width, group.dropped)
                if source == known:
                    return UnchangedSource(group.key, group.locate(-1), source, watermark(group))
            result = finish(group)
            if self._record and isinstance(result, MappedInvoice):
                source = source or self._hasher.of_rows(group.rows, self._width, group.dropped)
                return dataclasses.replace(result, source_hash=source)
            return result

        return finish_or_skip


def unchanged(
    source: str, watermark: Callable[[Group], object | None]
) -> Callable[[Group], Streamed]:
    """The finish step of a group :meth:`Skipper.unchanged_spans` found unchanged."""
    return lambda group: UnchangedSource(group.key, group.locate(-1), source, watermark(group))
