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

from pipeline.mapping.grouping import Group
from pipeline.mapping.results import MappedInvoice, Streamed, UnchangedSource
from pipeline.mapping.sourcehash import SourceHasher

AckedSources = Callable[[list[str]], Mapping[str, str]]
"""Keys → the source hash behind each one's acknowledged payload (keys without one left out)."""


class Skipper:
    """The source hashes of the chunk in hand, and the finish step that consults them."""

    def __init__(self, hasher: SourceHasher, acked: AckedSources) -> None:
        self._hasher = hasher
        self._acked = acked
        self._known: Mapping[str, str] = {}

    def look_up(self, keys: Sequence[str | None], pending: Group | None) -> None:
        """Ask for the hashes of ``keys`` (a chunk's), keeping the one of the invoice still
        being collected from the chunk before."""
        wanted = sorted({key for key in keys if key is not None})
        found = dict(self._acked(wanted)) if wanted else {}
        if pending is not None and pending.key in self._known:
            found.setdefault(pending.key, self._known[pending.key])
        self._known = found

    def wrap(
        self,
        finish: Callable[[Group], Streamed],
        watermark: Callable[[Group], object | None],
    ) -> Callable[[Group], Streamed]:
        """``finish`` for groups whose source changed; the others come back unchanged."""

        def finish_or_skip(group: Group) -> Streamed:
            source = self._hasher(group)
            if self._known.get(group.key) == source:
                return UnchangedSource(group.key, group.locate(-1), source, watermark(group))
            result = finish(group)
            if isinstance(result, MappedInvoice):
                return dataclasses.replace(result, source_hash=source)
            return result

        return finish_or_skip
