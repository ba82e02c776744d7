"""The one interface every source kind implements (iterate chunks of rows with their location)
and the errors of the ERP side (:class:`SourceError`: terminal or transient)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from pipeline.errors import EtlError, TerminalError, TransientError


class SourceError(EtlError):
    """The ERP side cannot be read (a family: catch it, raise one of the two classes below)."""


class ExtractError(SourceError, TerminalError):
    """The source cannot be read at all (missing file, bad query, missing column): stops the run
    before anything is sent. The message names the source and the fix."""


class SourceUnavailable(SourceError, TransientError):
    """The ERP database or API did not answer for now (connection refused or lost, locked, shut
    down, retries used up): the run stops, and a later run may succeed. The message names the
    source; the driver's code, not its text, chose this class."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A slice of source rows.

    ``frame`` holds the raw values (text for CSV; native types for SQL and JSON, with non-integer
    JSON numbers as :class:`~decimal.Decimal`). Row ``i`` of the frame came from
    ``f"{origin}:{first_row + i}"`` (``exports/ap.csv:17`` or ``sql/sample_erp.sql row 17``).
    """

    frame: pd.DataFrame
    origin: str
    first_row: int

    def location(self, index: int) -> str:
        """Where row ``index`` of this chunk came from."""
        return f"{self.origin}:{self.first_row + index}"


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
