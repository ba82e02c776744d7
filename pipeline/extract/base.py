"""The one interface every source kind implements (iterate chunks of rows with their location)
and the errors of the ERP side (:class:`SourceError`: terminal or transient)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol, Self, runtime_checkable

from pipeline.errors import EtlError, TerminalError, TransientError

Columns = Mapping[str, list[object]]
"""Column name → the values of that column, one per row (every list as long as the chunk)."""
NO_COLUMNS: Columns = {}
Rows = Sequence[Sequence[object]]
"""Row tuples as a database driver returns them, each in the order of the chunk's names."""


class RowColumns(Mapping[str, list[object]]):
    """The columns of row tuples, each transposed when first read (and kept): a chunk read as
    rows (:meth:`Chunk.of_rows`) costs only the columns its reader asks for."""

    __slots__ = ("_at", "_made", "_rows")

    def __init__(self, names: Sequence[str], rows: Rows) -> None:
        self._at = {name: index for index, name in enumerate(names)}
        if len(self._at) != len(names):
            raise ValueError(f"column names {list(names)} hold a name more than once")
        self._rows = rows
        self._made: dict[str, list[object]] = {}

    def __getitem__(self, name: str) -> list[object]:
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = list(map(itemgetter(self._at[name]), self._rows))
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


class SourceError(EtlError):
    """The ERP side cannot be read (a family: catch it, raise one of the classes below)."""


class ExtractError(SourceError, TerminalError):
    """The source cannot be read (missing file, bad query, an unreadable row): stops the run,
    before anything is sent when found while the source is opened and checked, else where the
    stream found it. The message names the source (file:row, query and database) and the fix."""


class SourceConfigError(ExtractError):
    """A source cannot even be opened as configured (no database URL …); the message names the
    mapping file:line and the setting to give."""


class SourceUnavailable(SourceError, TransientError):
    """The ERP database or API did not answer for now (connection refused or lost, locked, shut
    down, retries used up): the run stops, and a later run may succeed. The message names the
    source; the driver's code, not its text, chose this class."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of source rows as plain columns: what the mapping engine reads (column lists),
    without a data frame to build and take apart again.

    ``columns`` holds the raw values (text for CSV; native types for SQL and JSON, with
    non-integer JSON numbers as :class:`~decimal.Decimal`), in the source's column order. Row ``i``
    came from ``f"{origin}:{first_row + i}"`` (``exports/ap.csv:17``); subclasses name rows their
    own way (``sql/sample_erp.sql row 17``, ``export.json:invoices[3]``).
    """

    columns: Columns
    row_count: int
    origin: str
    first_row: int
    rows: Rows | None = field(default=None, kw_only=True)
    """The row tuples themselves when the chunk was read as rows (:meth:`of_rows`; ``columns``
    is then a view over them), else None."""

    def __post_init__(self) -> None:
        if self.rows is not None:
            if len(self.rows) != self.row_count:
                raise ValueError(
                    f"{self.origin}: {len(self.rows)} rows in a chunk of {self.row_count} rows"
                )
            return
        for name, values in self.columns.items():
            if len(values) != self.row_count:
                raise ValueError(
                    f"{self.origin}: column {name!r} holds {len(values)} values in a chunk of "
                    f"{self.row_count} rows"
                )

    @classmethod
    def from_rows(
        cls, names: Sequence[str], rows: Sequence[Sequence[object]], origin: str, first_row: int
    ) -> Self:
        """A chunk of ``rows`` (each a sequence in the order of ``names``), transposed once."""
        lists: list[list[object]] = [list(values) for values in zip(*rows, strict=True)]
        if not lists:
            lists = [[] for _ in names]
        return cls(dict(zip(names, lists, strict=True)), len(rows), origin, first_row)

    @classmethod
    def of_rows(cls, names: Sequence[str], rows: Rows, origin: str, first_row: int) -> Self:
        """A chunk that keeps ``rows`` (each a sequence in the order of ``names``, as a driver
        fetched them) and transposes a column only when it is read (:class:`RowColumns`)."""
        return cls(RowColumns(names, rows), len(rows), origin, first_row, rows=rows)

    def __len__(self) -> int:
        return self.row_count

    @property
    def names(self) -> list[str]:
        """The column names, in source order."""
        return list(self.columns)

    def location(self, index: int) -> str:
        """Where row ``index`` of this chunk came from."""
        return f"{self.origin}:{self.first_row + index}"

    def records(self) -> Iterator[dict[str, object]]:
        """Each row as ``{column: value}`` (for small consumers and tests; the engine reads
        :attr:`columns`)."""
        names = self.names
        if self.rows is not None:
            for values in self.rows:
                yield dict(zip(names, values, strict=True))
            return
        for index in range(self.row_count):
            yield {name: self.columns[name][index] for name in names}

    def without_rows(self) -> Self:
        """This chunk without its values: enough to name row locations, without keeping every
        cell alive while an invoice waits for its next rows."""
        return dataclasses.replace(self, columns=NO_COLUMNS, row_count=0, rows=None)


class Source(Protocol):
    """A readable source of rows (a SQL query, CSV files, a JSON export)."""

    def describe(self) -> str:
        """A short human name for messages (``sql/sample_erp.sql on sqlite``), never a password."""
        ...

    def columns(self) -> list[str]:
        """The column names the source yields, for checks and "did you mean" hints."""
        ...

    def chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        """Stream the rows in chunks; ``params`` binds ``:since`` / ``:until`` and friends."""
        ...


@runtime_checkable
class ParameterisedSource(Source, Protocol):
    """A source whose reads bind parameters (a SQL query): it can be tried with them bound."""

    @property
    def backend(self) -> str:
        """The database's dialect name (``sqlite``, ``postgresql``, ``mysql`` …)."""
        ...

    def parameters(self) -> list[str]:
        """The names of the parameters its reads bind (``["since", "until"]``)."""
        ...

    def probe(self, params: Mapping[str, object], round_name: str) -> None:
        """Run once with ``params`` bound, reading as little as possible; raise the
        :class:`SourceError` a run with them would meet (``round_name`` names it)."""
        ...
