"""CSV sources: files matched by a path or a glob, read in chunks of text cells with row numbers.

Every cell is text (an empty cell is ``""``). Row numbers are what a spreadsheet shows: the header
is row 1, the first data row is row 2, a quoted cell with embedded newlines is one row, and blank
lines count (they are dropped from the chunks but never shift the numbers of the rows after them).

**Why pandas here:** its C parser is where pandas pays: it tokenizes quoted cells, embedded
newlines and odd delimiters in C, several times faster than the :mod:`csv` module's per-row
Python objects. Its frames are not handed on: each column leaves the frame once
(``tolist``) as a plain list, which is what the mapping engine reads.

**Reads:** each file is read once, for streaming, plus one cheap header check (``csv.reader`` over
the first record: :meth:`CsvSource.columns` never reads the body, and the header of each file is
read once per source). The streaming read checks every block on the way to the parser:

* a wrong encoding is reported with its line and byte offset and the ``encoding:`` fix;
* NUL bytes are **refused**, never stripped: a finance tool must not change data silently, and a NUL
  usually means a truncated, binary or UTF-16 file;
* a row with more cells than the header, or an unclosed quote, is reported with its row number;
* a duplicated column name, and files of one glob with different headers, are refused (from the
  header checks, before the first chunk);
* a UTF-8 byte-order mark is skipped (``utf-8-sig`` semantics).

A problem in the body stops the stream where it is found: in the first chunk (every export
smaller than ``chunk_rows`` rows) before anything is yielded; further down, after the chunks
before it, as a SQL query failing half-way does. Those chunks were read and checked whole, and
a rerun after the export is fixed finds them unchanged (nothing is sent twice).

A row with fewer cells than the header is padded with ``""`` (exports often drop trailing empty
cells); the mapping then reports the missing values row by row.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from pipeline.extract.base import Chunk, ExtractError
from pipeline.extract.textcheck import TextCheck, check_text

_GLOB_CHARS = re.compile(r"[*?\[]")
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_EOF_IN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")
_UTF8_BOM = codecs.BOM_UTF8


def open_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading bytes: every read of a CSV file starts here."""
    return path.open("rb")


@dataclass(frozen=True, slots=True)
class _Header:
    raw: list[str]
    """The header cells as written."""
    names: list[str]
    """The column names (an empty cell is named ``Unnamed: <position>``, as pandas names it)."""


class CsvSource:
    """CSV files named by ``pattern``: a path or a glob relative to ``base_dir``, sorted."""

    def __init__(
        self,
        pattern: str,
        *,
        base_dir: Path,
        delimiter: str = ",",
        encoding: str = "utf-8",
        quotechar: str = '"',
        chunk_rows: int = 20_000,
    ) -> None:
        self._pattern = pattern
        self._base_dir = Path(base_dir)
        self._delimiter = _one_char("delimiter", delimiter, pattern)
        self._quotechar = _one_char("quotechar", quotechar, pattern)
        self._encoding = _reading_codec(encoding, pattern)
        if chunk_rows < 1:
            raise ExtractError(f"CSV source {pattern!r}: chunk_rows must be at least 1")
        self._chunk_rows = chunk_rows
        self._headers: dict[Path, _Header] = {}

    def describe(self) -> str:
        """``CSV exports/*.csv``."""
        return f"CSV {self._pattern}"

    def files(self) -> list[tuple[Path, str]]:
        """The matched files as ``(path, origin)``, sorted; :class:`ExtractError` if none."""
        if not _GLOB_CHARS.search(self._pattern):
            path = self._base_dir / self._pattern
            if not path.is_file():
                what = "is a directory, not a file" if path.is_dir() else "does not exist"
                raise ExtractError(
                    f"CSV source {self._pattern!r}: {path} {what}; check the source path "
                    f"(relative to {self._base_dir}) and that the export has run"
                )
            return [(path, self._pattern)]
        names = glob.glob(self._pattern, root_dir=self._base_dir, recursive=True)
        found = sorted(name for name in names if (self._base_dir / name).is_file())
        if not found:
            raise ExtractError(
                f"CSV source {self._pattern!r}: the pattern matches no file under "
                f"{self._base_dir}; check the source path and that the export has run"
            )
        return [(self._base_dir / name, Path(name).as_posix()) for name in found]

    def columns(self) -> list[str]:
        """The header of the first matched file (only the header is read)."""
        path, origin = self.files()[0]
        return list(self._header(path, origin).names)

    def chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        """Check every file's header, then stream each file once, ``chunk_rows`` rows at a time
        (``params`` unused)."""
        files = self.files()
        first_path, first_origin = files[0]
        expected = self._header(first_path, first_origin)
        for path, origin in files[1:]:
            self._same_header(self._header(path, origin).raw, expected.raw, origin, first_origin)
        for path, origin in files:
            yield from self._file_chunks(path, origin, expected)

    # --- the header check ----------------------------------------------------------------------
    def _header(self, path: Path, origin: str) -> _Header:
        """The header of one file, read once per source (the first record only)."""
        if path not in self._headers:
            raw = self._raw_header(path, origin)
            duplicates = sorted({name for name in raw if raw.count(name) > 1 and name})
            if duplicates:
                raise ExtractError(
                    f"{origin}:1: column name(s) {duplicates} appear more than once in the "
                    "header; rename them in the export so each column can be mapped"
                )
            names = [name or f"Unnamed: {at}" for at, name in enumerate(raw)]
            self._headers[path] = _Header(raw, names)
        return self._headers[path]

    def _raw_header(self, path: Path, origin: str) -> list[str]:
        try:
            with open_file(path) as raw, _text(raw, self._encoding) as handle:
                reader = csv.reader(handle, delimiter=self._delimiter, quotechar=self._quotechar)
                header = next(reader, None)
        except UnicodeDecodeError as error:
            check_text(path, origin, self._encoding, opener=open_file)  # names line and offset
            raise ExtractError(f"{origin}:1: not valid {self._encoding}: {error}") from None
        except (csv.Error, OSError) as error:
            raise ExtractError(f"{origin}:1: cannot read the header: {error}") from None
        if not header:
            raise ExtractError(
                f"{origin}:1: the file is empty or starts with a blank line; a CSV export needs a "
                "header line naming its columns"
            )
        return header

    @staticmethod
    def _same_header(header: list[str], expected: list[str], origin: str, first: str) -> None:
        if header != expected:
            raise ExtractError(
                f"{origin}:1: the header differs from {first}:1 "
                f"(only here: {sorted(set(header) - set(expected))}, missing here: "
                f"{sorted(set(expected) - set(header))}, or another order); files of one "
                "source must share one header: fix the export or narrow the pattern"
            )

    # --- streaming -----------------------------------------------------------------------------
    def _file_chunks(self, path: Path, origin: str, header: _Header) -> Iterator[Chunk]:
        """The one streaming read of a file: its header row checked again, then its rows."""
        row = 2
        with open_file(path) as handle:
            reader = _CheckedReader(handle, origin, self._encoding)
            for cells in self._column_lists(reader, origin, header.raw):
                count = len(cells[0])
                yield from _without_blank_rows(header.names, cells, count, origin, row)
                row += count

    def _column_lists(
        self, reader: _CheckedReader, origin: str, checked: list[str]
    ) -> Iterator[list[list[object]]]:
        """The text cells of the rows after the header row (which must be ``checked``) as
        column lists, ``chunk_rows`` rows at a time."""
        try:
            with pd.read_csv(
                reader,  # type: ignore[call-overload]  # a binary reader, as pandas reads a file
                iterator=True,
                header=None,
                sep=self._delimiter,
                quotechar=self._quotechar,
                encoding="utf-8",  # the reader hands on UTF-8, whatever the file's encoding
                dtype=object,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                engine="c",
            ) as frames:
                size = self._chunk_rows + 1
                while (frame := _next_frame(frames, size)) is not None:
                    cells = [frame[column].tolist() for column in frame.columns]
                    del frame  # only the lists stay alive while the chunk is mapped
                    if size > self._chunk_rows:  # the first part starts with the header row
                        _same_as_checked([str(column[0]) for column in cells], checked, origin)
                        cells = [column[1:] for column in cells]
                    yield cells
                    size = self._chunk_rows
        except (pd.errors.ParserError, ValueError, OSError) as error:
            raise self._parse_error(origin, error) from None

    def _parse_error(self, origin: str, error: Exception) -> ExtractError:
        text = str(error).strip()
        if match := _FIELDS_ERROR.search(text):
            expected, row, seen = match.groups()
            return ExtractError(
                f"{origin}:{row}: row has {seen} cells but the header has {expected}; check the "
                f"delimiter ({self._delimiter!r}) and quoting ({self._quotechar!r}) of that row, "
                "or set `delimiter:` / `quotechar:` for this source"
            )
        if match := _EOF_IN_QUOTE.search(text):
            row = int(match.group(1)) + 1
            return ExtractError(
                f"{origin}:{row}: a quoted cell ({self._quotechar!r}) starting in this row is "
                "never closed; fix the quoting in the export or set `quotechar:`"
            )
        if isinstance(error, pd.errors.EmptyDataError):
            return ExtractError(f"{origin}:1: the file is empty; a CSV export needs a header line")
        return ExtractError(f"{origin}: cannot parse the CSV file: {text}")


def _same_as_checked(streamed: list[str], checked: list[str], origin: str) -> None:
    if streamed != checked:
        raise ExtractError(
            f"{origin}:1: the header changed between its check and the read (was the export "
            "rewritten during the run?); run again once the export is complete"
        )


def _next_frame(frames: pd.io.parsers.TextFileReader, size: int) -> pd.DataFrame | None:
    try:
        return frames.get_chunk(size)
    except StopIteration:
        return None


class _CheckedReader:
    """A file as pandas reads it: each block read once, decoded strictly and searched for NUL
    (:class:`~pipeline.extract.textcheck.TextCheck`), then handed on as UTF-8: UTF-8 files as
    the bytes read (a byte-order mark dropped), other encodings re-encoded."""

    def __init__(self, handle: BinaryIO, origin: str, encoding: str) -> None:
        self._handle = handle
        self._check = TextCheck(origin, encoding)
        self._utf8 = codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}
        self._started = False

    def read(self, size: int = -1) -> bytes:
        """Up to about ``size`` bytes of UTF-8 (``b""`` only at the end of the file)."""
        while True:
            block = self._handle.read(size)
            text = self._check.feed(block)
            if not block:
                return b""
            data = block if self._utf8 else text.encode("utf-8")
            if not self._started and self._utf8:
                data = self._without_bom(data, size)
            self._started = True
            if data:
                return data

    def _without_bom(self, data: bytes, size: int) -> bytes:
        while len(data) < len(_UTF8_BOM) and _UTF8_BOM.startswith(data):
            more = self._handle.read(size)
            if not more:
                break
            self._check.feed(more)
            data += more
        return data.removeprefix(_UTF8_BOM)


def _text(handle: BinaryIO, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(handle, encoding=encoding, newline="")


def _without_blank_rows(
    names: list[str], cells: list[list[object]], count: int, origin: str, first_row: int
) -> Iterator[Chunk]:
    """Rows ``first_row…`` as chunks, leaving out rows whose every cell is empty."""
    first = cells[0] if cells else []
    if "" not in first:
        if count:
            yield Chunk(dict(zip(names, cells, strict=True)), count, origin, first_row)
        return
    blank = [i for i, value in enumerate(first) if value == "" and _blank(cells, i)]
    start = 0
    for stop in [*blank, count]:
        if stop > start:
            part = {name: column[start:stop] for name, column in zip(names, cells, strict=True)}
            yield Chunk(part, stop - start, origin, first_row + start)
        start = stop + 1


def _blank(cells: list[list[object]], index: int) -> bool:
    return all(column[index] == "" for column in cells)


def _reading_codec(encoding: str, pattern: str) -> str:
    """The codec to read with: UTF-8 skips a byte-order mark (``utf-8-sig``)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ExtractError(
            f"CSV source {pattern!r}: unknown encoding {encoding!r}; use a Python codec name "
            "such as utf-8, cp1252, latin-1 or utf-16"
        ) from None
    return "utf-8-sig" if name == "utf-8" else name


def _one_char(name: str, value: str, pattern: str) -> str:
    if len(value) != 1:
        raise ExtractError(f"CSV source {pattern!r}: {name} must be one character, got {value!r}")
    return value
