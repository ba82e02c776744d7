"""CSV sources: files matched by a path or a glob, read in chunks of text cells with row numbers.

Every cell is text (an empty cell is ``""``). Row numbers are what a spreadsheet shows: the header
is row 1, the first data row is row 2, a quoted cell with embedded newlines is one row, and blank
lines count (they are dropped from the frames but never shift the numbers of the rows after them).

Before the first chunk is yielded every matched file is checked end to end (extra streamed passes:
about double the read time, memory stays flat), so an unreadable file stops the run before
anything is sent:

* a wrong encoding is reported with its line and byte offset and the ``encoding:`` fix;
* NUL bytes are **refused**, never stripped: a finance tool must not change data silently, and a NUL
  usually means a truncated, binary or UTF-16 file;
* a row with more cells than the header, or an unclosed quote, is reported with its row number;
* a duplicated column name, and files of one glob with different headers, are refused;
* a UTF-8 byte-order mark is skipped (``utf-8-sig`` semantics).

A row with fewer cells than the header is padded with ``""`` (exports often drop trailing empty
cells); the mapping then reports the missing values row by row.
"""

from __future__ import annotations

import codecs
import csv
import glob
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

from pipeline.extract.base import Chunk, ExtractError

_SCAN_BLOCK = 1 << 18
_GLOB_CHARS = re.compile(r"[*?\[]")
_FIELDS_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_EOF_IN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


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
        return self._header(path, origin)

    def chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        """Check every file, then stream them ``chunk_rows`` rows at a time (``params`` unused)."""
        files = self.files()
        self._check(files)
        for path, origin in files:
            yield from self._file_chunks(path, origin)

    # --- checks before the first chunk -------------------------------------------------------
    def _check(self, files: list[tuple[Path, str]]) -> None:
        first_path, first_origin = files[0]
        expected = self._header(first_path, first_origin)
        for path, origin in files:
            header = self._header(path, origin)
            if header != expected:
                raise ExtractError(
                    f"{origin}:1: the header differs from {first_origin}:1 "
                    f"(only here: {sorted(set(header) - set(expected))}, missing here: "
                    f"{sorted(set(expected) - set(header))}, or another order); files of one "
                    "source must share one header: fix the export or narrow the pattern"
                )
            check_text(path, origin, self._encoding)
            for _ in self._frames(path, origin, self._chunk_rows):
                pass

    def _header(self, path: Path, origin: str) -> list[str]:
        raw = self._raw_header(path, origin)
        duplicates = sorted({name for name in raw if raw.count(name) > 1 and name})
        if duplicates:
            raise ExtractError(
                f"{origin}:1: column name(s) {duplicates} appear more than once in the header; "
                "rename them in the export so each column can be mapped"
            )
        try:
            frame = pd.read_csv(
                path,
                nrows=0,
                sep=self._delimiter,
                quotechar=self._quotechar,
                encoding=self._encoding,
                dtype=str,
            )
        except (pd.errors.ParserError, ValueError) as error:
            raise self._parse_error(origin, error) from None
        return [str(name) for name in frame.columns]

    def _raw_header(self, path: Path, origin: str) -> list[str]:
        try:
            with path.open(encoding=self._encoding, newline="") as handle:
                reader = csv.reader(handle, delimiter=self._delimiter, quotechar=self._quotechar)
                header = next(reader, None)
        except UnicodeDecodeError as error:
            check_text(path, origin, self._encoding)
            raise ExtractError(f"{origin}:1: not valid {self._encoding}: {error}") from None
        except (csv.Error, OSError) as error:
            raise ExtractError(f"{origin}:1: cannot read the header: {error}") from None
        if not header:
            raise ExtractError(
                f"{origin}:1: the file is empty or starts with a blank line; a CSV export needs a "
                "header line naming its columns"
            )
        return header

    # --- streaming -----------------------------------------------------------------------------
    def _file_chunks(self, path: Path, origin: str) -> Iterator[Chunk]:
        row = 2
        for frame in self._frames(path, origin, self._chunk_rows):
            yield from _without_blank_rows(frame, origin, row)
            row += len(frame)

    def _frames(self, path: Path, origin: str, rows: int) -> Iterator[pd.DataFrame]:
        try:
            with pd.read_csv(
                path,
                chunksize=rows,
                sep=self._delimiter,
                quotechar=self._quotechar,
                encoding=self._encoding,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                skip_blank_lines=False,
                engine="c",
            ) as reader:
                yield from reader
        except UnicodeDecodeError as error:
            check_text(path, origin, self._encoding)
            raise ExtractError(f"{origin}: not valid {self._encoding}: {error}") from None
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


def _without_blank_rows(frame: pd.DataFrame, origin: str, first_row: int) -> Iterator[Chunk]:
    """Yield ``frame`` as chunks, leaving out rows whose every cell is empty."""
    frame = frame.reset_index(drop=True)
    candidates = (frame.iloc[:, 0] == "").to_numpy().nonzero()[0]
    blank = [int(i) for i in candidates if (frame.iloc[int(i)] == "").all()]
    start = 0
    for stop in [*blank, len(frame)]:
        if stop > start:
            yield Chunk(frame.iloc[start:stop].reset_index(drop=True), origin, first_row + start)
        start = stop + 1


def check_text(path: Path, origin: str, encoding: str) -> None:
    """Decode the whole file in blocks; a decoding error or a NUL byte is an :class:`ExtractError`
    naming ``origin``, the line, the byte offset and the fix."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    lines = 1
    try:
        with path.open("rb") as handle:
            while block := handle.read(_SCAN_BLOCK):
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(block)
                except UnicodeDecodeError as error:
                    at = offset - pending + error.start
                    line = lines + block[: max(0, at - offset)].count(b"\n")
                    raise _encoding_error(origin, encoding, line, at, error) from None
                _refuse_nul(origin, text, lines)
                lines += text.count("\n")
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise _encoding_error(origin, encoding, lines, offset, error) from None
    except OSError as error:
        raise ExtractError(f"{origin}: cannot read the file: {error.strerror}") from None


def _refuse_nul(origin: str, text: str, first_line: int) -> None:
    at = text.find("\x00")
    if at >= 0:
        line = first_line + text.count("\n", 0, at)
        raise ExtractError(
            f"{origin}:{line}: the file contains a NUL byte (\\0); the export is probably "
            "truncated, binary or UTF-16 (then set `encoding: utf-16`). The pipeline refuses it "
            "rather than change finance data silently: fix or re-run the export"
        )


def _encoding_error(
    origin: str, encoding: str, line: int, at: int, error: UnicodeDecodeError
) -> ExtractError:
    return ExtractError(
        f"{origin}:{line}: not valid {encoding} at byte offset {at} ({error.reason}); set "
        "`encoding:` for this source to the export's encoding (often cp1252 or latin-1)"
    )


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
