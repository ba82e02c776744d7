"""Skipping unchanged sources: an invoice whose source hash is the one behind its acknowledged
payload is not mapped again (:meth:`pipeline.mapping.engine.MappingEngine.run_skipping`).

The engine hands each chunk's raw rows to :meth:`Skipper.read_chunk`, which asks
:data:`AckedSources` once, with the chunk's keys, for the source hash staging holds for each
acknowledged, current payload, and hashes the chunk's whole invoices at once (one ``repr`` per
row, one join per invoice: :meth:`~pipeline.mapping.sourcehash.SourceHasher.of_texts`). A whole
invoice whose hash matches becomes an :class:`~pipeline.mapping.results.UnchangedSource`; any
other is mapped as usual and carries its source hash (staged with its payload hash, so the next
run can skip it). An invoice that goes on into the next chunk is hashed from its rows when it is
finished (:meth:`Skipper.wrap`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from pipeline.extract.base import Chunk
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
        self._where: Chunk | None = None
        self._hashes: dict[int, str] = {}
        """Row → source hash of the whole invoices of the chunk in hand that are mapped."""

    def read_chunk(
        self, raw: Sequence[Row], spans: Sequence[Span], pending: Group | None, where: Chunk
    ) -> dict[int, str]:
        """``start → source hash`` of the spans of a chunk's ``raw`` rows that are whole
        invoices with the hash staging holds: neither the invoice still collected from the
        chunk before, nor the last span (it may go on in the next chunk). The hashes of the
        other whole invoices are kept for :meth:`wrap` when mapped invoices carry theirs."""
        self._look_up([key for key, _, _ in spans], pending)
        self._where, self._hashes = where, {}
        last = len(raw)
        whole = [
            (key, start, end)
            for key, start, end in spans
            if key is not None
            and end != last
            and not (start == 0 and pending is not None and pending.key == key)
            and (self._record or key in self._known)
        ]
        if not whole:
            return {}
        texts = list(map(repr, raw))
        limit, known = self._limit, self._known
        same: dict[int, str] = {}
        for key, start, end in whole:
            kept = min(end, start + limit)
            source = self._hasher.of_texts(texts[start:kept], end - kept)
            if known.get(key) == source:
                same[start] = source
            else:
                self._hashes[start] = source
        return same

    def _look_up(self, keys: Sequence[str | None], pending: Group | None) -> None:
        """Ask for the hashes of ``keys`` (a chunk's), keeping the one of the invoice still
        being collected from the chunk before."""
        wanted = sorted({key for key in keys if key is not None})
        found = dict(self._acked(wanted)) if wanted else {}
        if pending is not None and pending.key in self._known:
            found.setdefault(pending.key, self._known[pending.key])
        self._known = found

    def _source_of(self, group: Group) -> str:
        """The source hash of ``group``: taken with its chunk when it was whole in it."""
        chunk, row = group.header_at
        if chunk is self._where and (found := self._hashes.get(row)) is not None:
            return found
        return self._hasher.of_rows(group.rows, self._width, group.dropped)

    def wrap(
        self,
        finish: Callable[[Group], Streamed],
        watermark: Callable[[Group], object | None],
    ) -> Callable[[Group], Streamed]:
        """``finish`` for groups not decided by :meth:`read_chunk`: unchanged ones come back
        as such; the mapped carry their source hash."""

        def finish_or_skip(group: Group) -> Streamed:
            source = None
            if (known := self._known.get(group.key)) is not None:
                source = self._source_of(group)
                if source == known:
                    return UnchangedSource(group.key, source, watermark(group), group.header_at)
            result = finish(group)
            if self._record and isinstance(result, MappedInvoice):
                return dataclasses.replace(result, source_hash=source or self._source_of(group))
            return result

        return finish_or_skip
