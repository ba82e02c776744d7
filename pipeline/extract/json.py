"""JSON sources: the records of a JSON document or a JSON Lines file, flattened into row chunks.

Numbers keep their exact value: integers stay ``int``, every other number is a
:class:`~decimal.Decimal` (``NaN`` / ``Infinity`` too, for the mapping to reject). Nested objects
become dotted columns (``supplier.name``); lists stay values, except the ``explode`` list, which
gives one row per element with its keys as ``<explode>.<key>`` columns (a record whose list is
empty or missing gives one row with those columns None). A key given twice in one object is
refused, not silently collapsed to its last value.

Locations: ``<file>:<records>[<index>]`` for a document (0-based, as in JSONPath) and
``<file>:<line>`` for JSON Lines (1-based, as an editor shows it); an exploded row adds
``.<explode>[<index>]`` (document) or `` <explode>[<index>]`` (JSON Lines).

**Why no pandas here:** records are Python objects already (``json.loads`` builds them); they go
straight into column lists, which is what the mapping engine reads. A frame would only box those
objects into object columns for the engine to unbox them again.

A document is parsed whole (JSON has no streamable shape in the standard library): prefer JSON
Lines for large exports. JSON Lines files are streamed, twice: a first pass checks every line and
collects the columns before the first chunk is yielded, so a malformed line stops the run before
anything is sent, and every chunk carries the same columns.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeAlias

from pipeline.extract.base import Chunk, ExtractError
from pipeline.extract.textcheck import check_text

Record: TypeAlias = dict[str, object]
Located: TypeAlias = tuple[str, Record]


@dataclass(frozen=True, slots=True)
class JsonChunk(Chunk):
    """A chunk whose rows carry their own locations (records are not contiguous lines);
    ``first_row`` is the 1-based position of its first row among all the source's rows."""

    locations: tuple[str, ...] = ()

    def location(self, index: int) -> str:
        """Where row ``index`` of this chunk came from (``file.json:invoices[3]``)."""
        return self.locations[index]


class JsonSource:
    """Records of a JSON document (``records``: dotted path to the list) or a JSON Lines file."""

    def __init__(
        self,
        path: str,
        *,
        base_dir: Path,
        records: str | None = None,
        lines: bool = False,
        explode: str | None = None,
        encoding: str = "utf-8",
        chunk_rows: int = 20_000,
    ) -> None:
        if chunk_rows < 1:
            raise ExtractError(f"JSON source {path!r}: chunk_rows must be at least 1")
        if lines and records:
            raise ExtractError(
                f"JSON source {path!r}: `records:` applies to a JSON document, not to JSON Lines "
                "(each line is one record); remove one of them"
            )
        self._origin = path
        self._path = Path(base_dir) / path
        self._records = records
        self._lines = lines
        self._explode = explode
        self._encoding = _reading_codec(encoding, path)
        self._chunk_rows = chunk_rows

    def describe(self) -> str:
        """``JSON samples/merchant_invoices.json`` or ``JSON Lines exports/ap.jsonl``."""
        return f"{'JSON Lines' if self._lines else 'JSON'} {self._origin}"

    def columns(self) -> list[str]:
        """Every column any record yields, in order of first appearance (reads the whole source)."""
        return self._columns(self._located_records())

    def chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        """Stream the rows ``chunk_rows`` at a time (``params`` unused); a record is never split."""
        if self._lines:
            columns = self.columns()
            located: Iterable[Located] = self._located_records()
        else:
            located = list(self._located_records())
            columns = self._columns(located)
        batch = _Batch(columns)
        done = 0
        for location, record in located:
            for row_location, row in self._rows(location, record):
                batch.add(row_location, row)
            if len(batch) >= self._chunk_rows:
                yield batch.chunk(self._origin, done + 1)
                done += len(batch)
                batch = _Batch(columns)
        if len(batch):
            yield batch.chunk(self._origin, done + 1)

    # --- records -------------------------------------------------------------------------------
    def _located_records(self) -> Iterator[Located]:
        if not self._path.is_file():
            raise ExtractError(
                f"JSON source {self._origin!r}: {self._path} does not exist or is not a file; "
                "check the source path and that the export has run"
            )
        return self._line_records() if self._lines else self._document_records()

    def _document_records(self) -> Iterator[Located]:
        document = _loads(self._origin, self._read_text())
        items = _walk(document, self._records, self._origin)
        label = self._records or ""
        for index, item in enumerate(items):
            location = f"{self._origin}:{label}[{index}]"
            yield location, _object(item, location)

    def _read_text(self) -> str:
        try:
            raw = self._path.read_bytes()
        except OSError as error:
            raise ExtractError(f"{self._origin}: cannot read the file: {error.strerror}") from None
        try:
            return raw.decode(self._encoding)
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise ExtractError(
                f"{self._origin}:{line}: not valid {self._encoding} at byte offset {error.start} "
                f"({error.reason}); set `encoding:` for this source to the export's encoding"
            ) from None

    def _line_records(self) -> Iterator[Located]:
        check_text(self._path, self._origin, self._encoding)
        with self._path.open(encoding=self._encoding, newline=None) as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    location = f"{self._origin}:{number}"
                    value = _loads(self._origin, line, line_number=number)
                    yield location, _object(value, location)

    # --- rows ------------------------------------------------------------------------------------
    def _rows(self, location: str, record: Record) -> Iterator[tuple[str, Record]]:
        flat = _flatten(record, location)
        if self._explode is None:
            yield location, flat
            return
        items = flat.pop(self._explode, None)
        if items is None or items == []:
            yield location, flat
            return
        if not isinstance(items, list):
            raise ExtractError(
                f"{location}: {self._explode!r} is a {_kind(items)}, not a list; `explode:` must "
                "name the list of line items (or be removed)"
            )
        separator = " " if self._lines else "."
        for index, item in enumerate(items):
            item_location = f"{location}{separator}{self._explode}[{index}]"
            element = _flatten(_object(item, item_location), item_location)
            yield item_location, flat | {f"{self._explode}.{k}": v for k, v in element.items()}

    def _columns(self, records: Iterable[Located]) -> list[str]:
        base: dict[str, None] = {}
        exploded: dict[str, None] = {}
        for location, record in records:
            for _, row in self._rows(location, record):
                for name in row:
                    is_item = self._explode is not None and name.startswith(f"{self._explode}.")
                    (exploded if is_item else base).setdefault(name)
        return [*base, *exploded]


class _Batch:
    """The rows of one chunk, put straight into column lists (a key a row lacks is None)."""

    def __init__(self, columns: list[str]) -> None:
        self._lists: dict[str, list[object]] = {name: [] for name in columns}
        self._locations: list[str] = []

    def __len__(self) -> int:
        return len(self._locations)

    def add(self, location: str, row: Record) -> None:
        """Append one flattened row."""
        for name, values in self._lists.items():
            values.append(row.get(name))
        self._locations.append(location)

    def chunk(self, origin: str, first: int) -> JsonChunk:
        """These rows as a chunk whose first row is the source's ``first``."""
        return JsonChunk(self._lists, len(self), origin, first, tuple(self._locations))


def _flatten(record: Mapping[str, object], location: str, prefix: str = "") -> Record:
    """``{"supplier": {"name": "x"}}`` → ``{"supplier.name": "x"}``; lists stay values."""
    flat: Record = {}
    for key, value in record.items():
        name = prefix + key
        if isinstance(value, dict) and value:
            for column, cell in _flatten(value, location, name + ".").items():
                _put(flat, column, cell, location)
        else:
            _put(flat, name, value, location)
    return flat


def _put(flat: Record, column: str, value: object, location: str) -> None:
    if column in flat:
        raise ExtractError(
            f"{location}: the column {column!r} comes both from a dotted key and from a nested "
            "object; rename one of them in the export"
        )
    flat[column] = value


class _DuplicateKeyError(ValueError):
    """A JSON object names a key twice (Python's json would silently keep the last)."""


def _unique_keys(pairs: list[tuple[str, object]]) -> Record:
    record = dict(pairs)
    if len(record) != len(pairs):
        keys = [key for key, _ in pairs]
        raise _DuplicateKeyError(next(key for key in keys if keys.count(key) > 1))
    return record


def _walk(document: object, path: str | None, origin: str) -> list[object]:
    """The list at the dotted ``path`` inside ``document`` (the document itself when None)."""
    node = document
    walked: list[str] = []
    for part in path.split(".") if path else []:
        if not isinstance(node, dict) or part not in node:
            where = ".".join(walked) or "the top level"
            keys = sorted(node) if isinstance(node, dict) else []
            raise ExtractError(
                f"{origin}: no key {part!r} at {where} (keys there: {keys}); set `records:` to "
                "the dotted path of the records list, e.g. `records: invoices`"
            )
        node = node[part]
        walked.append(part)
    if not isinstance(node, list):
        what = f"{path!r}" if path else "the document"
        raise ExtractError(
            f"{origin}: {what} is a {_kind(node)}, not a list of records; set `records:` to the "
            "dotted path of the records list (e.g. `records: invoices`)"
        )
    return node


def _object(value: object, location: str) -> Record:
    if not isinstance(value, dict):
        raise ExtractError(
            f"{location}: a record must be a JSON object, not a {_kind(value)}; check `records:` "
            "(or `explode:`) points at a list of objects"
        )
    return value


def _loads(origin: str, text: str, *, line_number: int | None = None) -> object:
    try:
        return json.loads(
            text, parse_float=Decimal, parse_constant=Decimal, object_pairs_hook=_unique_keys
        )
    except _DuplicateKeyError as error:
        where = f"{origin}:{line_number}" if line_number else origin
        raise ExtractError(
            f"{where}: an object has the key {error.args[0]!r} twice (only one value could be "
            "kept); fix the export"
        ) from None
    except json.JSONDecodeError as error:
        line = error.lineno if line_number is None else line_number
        raise ExtractError(
            f"{origin}:{line}:{error.colno}: malformed JSON ({error.msg}); fix the export "
            "(`python -m json.tool <file>` shows the spot)"
        ) from None


def _kind(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _reading_codec(encoding: str, path: str) -> str:
    """The codec to read with: UTF-8 skips a byte-order mark (``utf-8-sig``)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ExtractError(
            f"JSON source {path!r}: unknown encoding {encoding!r}; use a Python codec name such "
            "as utf-8, cp1252 or utf-16"
        ) from None
    return "utf-8-sig" if name == "utf-8" else name
