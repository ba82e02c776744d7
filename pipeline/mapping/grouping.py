"""Rows → invoices, streamed: contiguous runs of one key, or header rows merge-joined with lines.

Memory stays flat: one chunk of rows, the invoice being collected (at most ``max_lines`` rows, the
rest counted, not kept) and, with a lines source, a bounded look-ahead of header rows. Keys are
compared exactly (:mod:`pipeline.mapping.keys`, which also finds keys that come back or only look
alike).

Merge-join: both sources must list invoices in the same order (ORDER BY the key in both queries,
same collation). For each header row the line rows with its key are taken while they come; a line
row whose key is neither the current header's nor one of the next :data:`LOOKAHEAD` headers' has no
header (or the orders differ) and is reported as an orphan.
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import ne
from typing import cast

from pipeline.extract.base import Chunk
from pipeline.mapping.keys import invoice_key

Row = tuple[object, ...]
LOOKAHEAD = 1_000


@dataclass(slots=True)
class Group:
    """The rows of one invoice as collected (``header`` is its header row)."""

    key: str
    header: Row
    header_at: tuple[Chunk, int]
    rows: list[Row] = field(default_factory=list)
    segments: list[tuple[Chunk, int, int]] = field(default_factory=list)
    dropped: int = 0
    repeated: bool = False

    def add(self, rows: list[Row], chunk: Chunk, start: int, limit: int) -> None:
        """Append line rows that start at row ``start`` of ``chunk`` (beyond ``limit``: counted)."""
        room = max(0, limit - len(self.rows))
        if room:
            self.segments.append((chunk, start, len(self.rows)))
            self.rows.extend(rows[:room])
        self.dropped += max(0, len(rows) - room)

    def locate(self, index: int) -> str:
        """Where line row ``index`` came from (``-1``: the header row)."""
        if index < 0 or not self.segments:
            chunk, row = self.header_at
            return chunk.location(row)
        for chunk, start, first in reversed(self.segments):
            if index >= first:
                return chunk.location(start + index - first)
        chunk, row = self.header_at
        return chunk.location(row)


@dataclass(frozen=True, slots=True)
class Orphan:
    """Rows that make no invoice: a blank key, or line rows with no header row."""

    key: str | None
    location: str
    rows: int
    kind: str  # "blank_key" | "no_header" | "blank_line_key"


def runs(
    keys: list[object], read: Callable[[object], str | None] = invoice_key
) -> Iterator[tuple[str | None, int, int]]:
    """``(key, start, end)`` for each run of equal keys (compared exactly, after ``read``: see
    :mod:`pipeline.mapping.keys`); each blank-key row is its own run."""
    if read is invoice_key and (found := _text_runs(keys)) is not None:
        yield from found
        return
    start = 0
    current: str | None = None
    exact = read is invoice_key
    for index, raw in enumerate(keys):
        if exact and raw.__class__ is str:
            key = None if not raw or raw.isspace() else raw
        else:
            key = read(raw)
        if key is None or key != current:
            if index > start:
                yield current, start, index
            start = index
            current = key
    if len(keys) > start:
        yield current, start, len(keys)


def _text_runs(keys: list[object]) -> list[tuple[str | None, int, int]] | None:
    """:func:`runs` of exact keys that are all text and none blank, found by C-level passes
    (each key compared with the one before it); None when a key is not text or blank."""
    if not keys or set(map(type, keys)) != {str}:
        return None
    texts = cast(list[str], keys)
    if "" in texts or any(map(str.isspace, texts)):
        return None
    starts = [0, *itertools.compress(range(1, len(texts)), map(ne, texts[1:], texts))]
    ends = [*starts[1:], len(texts)]
    return list(zip(map(texts.__getitem__, starts), starts, ends, strict=True))


@dataclass(frozen=True, slots=True)
class Keyed:
    """One source row with its key and where it came from."""

    key: str | None
    row: Row
    chunk: Chunk
    index: int


class Window:
    """Header rows with a bounded look-ahead: ``ahead(key)`` says whether a coming header has it."""

    def __init__(self, items: Iterator[Keyed], size: int = LOOKAHEAD) -> None:
        self._items = items
        self._buffer: deque[Keyed] = deque()
        self._keys: Counter[str | None] = Counter()
        self._size = size

    def __iter__(self) -> Iterator[Keyed]:
        return self

    def __next__(self) -> Keyed:
        if not self._buffer:
            return next(self._items)
        item = self._buffer.popleft()
        self._keys[item.key] -= 1
        if not self._keys[item.key]:
            del self._keys[item.key]
        return item

    def ahead(self, key: str) -> bool:
        """Whether one of the next :data:`LOOKAHEAD` header rows has ``key``."""
        while key not in self._keys and len(self._buffer) < self._size:
            item = next(self._items, None)
            if item is None:
                break
            self._buffer.append(item)
            self._keys[item.key] += 1
        return key in self._keys


class Peek:
    """An iterator of line rows that can show its next item."""

    def __init__(self, items: Iterator[Keyed]) -> None:
        self._items = items
        self._next: Keyed | None = next(items, None)

    def peek(self) -> Keyed | None:
        """The next item, not consumed."""
        return self._next

    def take(self) -> Keyed:
        """Consume and return the next item (there must be one)."""
        item = self._next
        assert item is not None
        self._next = next(self._items, None)
        return item


def merge_join(
    headers: Iterator[Keyed], lines: Iterator[Keyed], limit: int
) -> Iterator[Group | Orphan]:
    """Each header row with its line rows (line rows extended by the header row's values)."""
    pending = Peek(lines)
    window = Window(headers)
    for head in window:
        if head.key is None:
            yield Orphan(None, head.chunk.location(head.index), 1, "blank_key")
            continue
        group = Group(head.key, head.row, (head.chunk, head.index))
        while (line := pending.peek()) is not None:
            if line.key == head.key:
                pending.take()
                group.add([line.row + head.row], line.chunk, line.index, limit)
                continue
            if group.rows or group.dropped or (line.key is not None and window.ahead(line.key)):
                break
            yield _orphans(pending)
        yield group
    while pending.peek() is not None:
        yield _orphans(pending)


def _orphans(pending: Peek) -> Orphan:
    first = pending.take()
    if first.key is None:
        return Orphan(None, first.chunk.location(first.index), 1, "blank_line_key")
    count = 1
    while (line := pending.peek()) is not None and line.key == first.key:
        pending.take()
        count += 1
    return Orphan(first.key, first.chunk.location(first.index), count, "no_header")
