"""The shapes the compiled mapping works on: row tables, the invoice being built, node places.

A row is a tuple: the raw values of every column the mapping names (:class:`RowTable`), then one
*slot* per distinct column conversion, filled a whole column at a time per chunk. With a lines
source a line row is ``line raw + line slots + header row``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pipeline.failures import RowFailure, shorten
from pipeline.mapping.cells import ColumnConverter, Mark
from pipeline.mapping.spec import KeyPath
from pipeline.mapping.transforms import ConversionError
from pipeline.runtime.gcpause import collector_paused

Row = tuple[Any, ...]


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()
"""What a node returns to send nothing (blank optional value, absent object, failed value)."""
NOTHING: Final = object()
LINE_PREFIXES = [f"invoice_lines.{index}." for index in range(512)]


@dataclass(slots=True)
class Ctx:
    """The invoice being built: its key, its line rows, the row being read, its failures."""

    key: str
    rows: list[Row]
    locate: Callable[[int], str]
    failures: list[RowFailure] = field(default_factory=list)
    row: int = -1
    line_no: int = 0
    lines: list[Any] = field(default_factory=list)

    def fail(self, path: str, column: str | None, value: object, error: ConversionError) -> None:
        """Record that the value at ``path`` (read from ``column``) broke ``error.rule``."""
        self.failures.append(
            RowFailure(
                source_key=self.key,
                source_location=self.locate(self.row),
                stage="mapping",
                rule=error.rule,
                message=f"{path}: {error.message}",
                field_path=path,
                source_column=column,
                value=shorten(value),
                hint=error.hint,
            )
        )


Node = Callable[[Row, Ctx, str], Any]


@dataclass
class RowTable:
    """The row layout of one source: raw columns, then converted slots (``key → column, conv``)."""

    raw: list[str]
    slots: dict[Hashable, tuple[str, ColumnConverter]] = field(default_factory=dict)
    frozen: bool = False

    def raw_at(self, column: str) -> int:
        """Position of a raw column."""
        return self.raw.index(column)

    def slot_at(self, key: Hashable, column: str, make: Callable[[], ColumnConverter]) -> int:
        """Position of the slot converting ``column`` as ``key`` (registered on first use)."""
        if key not in self.slots:
            assert not self.frozen, "slots are fixed once compiled"
            self.slots[key] = (column, make())
        return len(self.raw) + list(self.slots).index(key)

    @property
    def width(self) -> int:
        """Values per row."""
        return len(self.raw) + len(self.slots)

    def rows(self, columns: Mapping[str, list[object]]) -> list[Row]:
        """Rows of one chunk from its raw column lists."""
        raw = [columns[name] for name in self.raw]
        converted = [convert(columns[column]) for column, convert in self.slots.values()]
        with collector_paused():  # C code only: the tuples hold no cycles
            return list(zip(*raw, *converted, strict=True))

    def iter_rows(self, columns: Mapping[str, list[object]]) -> Iterator[Row]:
        """:meth:`rows`, made as they are taken: an invoice's row tuples live only while it is
        mapped, so the collector never walks a whole chunk of them (a collection after a chunk
        of 20,000 rows walked every tuple: ~10 % of the mapping benchmark's time)."""
        raw = [columns[name] for name in self.raw]
        converted = [convert(columns[column]) for column, convert in self.slots.values()]
        return zip(*raw, *converted, strict=True)

    def raw_rows(self, columns: Mapping[str, list[object]]) -> list[Row]:
        """Rows of one chunk with only their raw values (nothing converted)."""
        with collector_paused():
            return list(zip(*(columns[name] for name in self.raw), strict=True))

    def convert_rows(
        self, columns: Mapping[str, list[object]], raw: list[Row], keep: Sequence[tuple[int, int]]
    ) -> list[Row]:
        """``raw`` (from :meth:`raw_rows`) with the rows of the ``keep`` ranges converted as
        :meth:`rows` converts them (the others stay raw: invoices that are not mapped). Unless
        every row is kept, the kept rows' columns are taken from ``raw`` itself, so a column of
        ``columns`` read lazily is not made for a few rows."""
        wanted = [index for start, end in keep for index in range(start, end)]
        if len(wanted) == len(raw):
            return self.rows(columns)
        if wanted:
            values = zip(*(raw[i] for i in wanted), strict=True)
            picked = dict(zip(self.raw, map(list, values), strict=True))
            for index, row in zip(wanted, self.rows(picked), strict=True):
                raw[index] = row
        return raw


@dataclass
class Layouts:
    """Row tables of the header rows and of the line rows (the same table for one source)."""

    header: RowTable
    lines: RowTable

    @property
    def joined(self) -> bool:
        """Whether line rows come from a lines source (line row = line part + header row)."""
        return self.lines is not self.header

    def where(self, level: str, column: str) -> tuple[RowTable, int]:
        """The table holding ``column`` for ``level`` rows, and where that table's part starts."""
        if level == "header" or not self.joined:
            return self.header, 0
        if column in self.lines.raw:
            return self.lines, 0
        return self.header, self.lines.width

    def freeze(self) -> None:
        """Fix the slots: positions handed out from now on are final."""
        self.header.frozen = self.lines.frozen = True


@dataclass(frozen=True, slots=True)
class Leaf:
    """How a field resolves a :class:`Mark` in its slot."""

    rel: str
    column: str
    default: object
    error_on_null: bool
    blank: ConversionError
    unmapped: ConversionError

    def resolve(self, mark: Mark, ctx: Ctx, prefix: str) -> object:
        if mark.kind == "failed":
            assert mark.error is not None
            ctx.fail(prefix + self.rel, self.column, mark.raw, mark.error)
            return OMIT
        if mark.kind == "blank" and self.default is not NOTHING:
            return self.default
        if self.error_on_null:
            error = self.blank if mark.kind == "blank" else self.unmapped
            ctx.fail(prefix + self.rel, self.column, mark.raw, error)
        return OMIT


@dataclass(frozen=True, slots=True)
class Place:
    """Where a node sits: key path in the file, path relative to its list entry, AppZen path
    pattern (``invoice_lines.*.``), and the rows it reads (``header``/``lines``)."""

    at: KeyPath
    rel: str
    pattern: str
    level: str

    def down(self, name: str | int) -> Place:
        """The place of field ``name`` inside this object."""
        return Place((*self.at, name), self.rel, self.pattern, self.level)

    def into(self, name: str) -> Place:
        """The place of the nested object ``name``."""
        return Place((*self.at, name), f"{self.rel}{name}.", f"{self.pattern}{name}.", self.level)


Child = tuple[str, int, Any]  # (name, slot or -1, _Leaf or Node)
