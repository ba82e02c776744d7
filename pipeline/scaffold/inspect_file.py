"""What an export file holds, for ``mapping init``: CSV (delimiter and encoding sniffed) or JSON
(a document's records list, or JSON Lines; a nested list of line items exploded), read through
the pipeline's own sources so the draft reads the file exactly as a sync will."""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.extract.base import ExtractError, Source
from pipeline.extract.csv import CsvSource
from pipeline.extract.json import JsonSource
from pipeline.scaffold.errors import InitError

SAMPLE_ROWS = 500
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"
_RECORD_KEYS = ("items", "records", "value", "invoices", "data", "rows", "results")
_LINE_HINTS = ("line", "item", "detail", "position")


@dataclass
class FileShape:
    """How to read an export, its columns and the first rows' values per column."""

    path: Path
    kind: Literal["csv", "json"]
    delimiter: str = ","
    encoding: str = "utf-8"
    records: str | None = None
    lines: bool = False
    explode: str | None = None
    columns: list[str] = field(default_factory=list)
    samples: dict[str, list[object]] = field(default_factory=dict)


def inspect_file(path: Path) -> FileShape:
    """The shape of a CSV or JSON export (by its suffix: ``.json``, ``.jsonl``, ``.ndjson`` are
    JSON, anything else CSV) and its first :data:`SAMPLE_ROWS` rows."""
    path = Path(path)
    if not path.is_file():
        raise InitError(f"--from-file {path}: no such file")
    shape = _json_shape(path) if path.suffix.lower() in (".json", ".jsonl", ".ndjson") else None
    shape = shape or _csv_shape(path)
    _read_samples(shape)
    return shape


def _csv_shape(path: Path) -> FileShape:
    with path.open("rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not just a character cut at the sniffed boundary
            encoding, text = "cp1252", head.decode("cp1252", errors="replace")
        else:
            text = head[: error.start].decode(encoding)
    return FileShape(path, "csv", delimiter=_delimiter(text), encoding=encoding)


def _delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        return max(_DELIMITERS, key=first.count)


def _json_shape(path: Path) -> FileShape:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        first = _first_json_line(path)
        return FileShape(path, "json", lines=True, explode=_explodable([first]))
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InitError(f"--from-file {path}: not a JSON document ({error})") from None
    records, rows = _records(document)
    return FileShape(path, "json", records=records, explode=_explodable(rows[:50]))


def _first_json_line(path: Path) -> object:
    with path.open(encoding="utf-8-sig") as lines:
        for line in lines:
            if line.strip():
                try:
                    return json.loads(line)
                except json.JSONDecodeError as error:
                    raise InitError(f"--from-file {path}: not JSON Lines ({error})") from None
    raise InitError(f"--from-file {path}: the file is empty")


def _records(document: object, path: str = "") -> tuple[str | None, list[object]]:
    """The dotted path to the list of records (None: the document is the list) and the list."""
    if isinstance(document, list):
        return (path or None), document
    if not isinstance(document, dict):
        raise InitError("--from-file: the JSON holds no list of records")
    keys = sorted(
        document, key=lambda k: (k.casefold() not in _RECORD_KEYS, list(document).index(k))
    )
    for key in keys:
        value = document[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value[:20]):
            return (f"{path}.{key}" if path else key), value
    for key in keys:
        if isinstance(document[key], dict):
            return _records(document[key], f"{path}.{key}" if path else key)
    raise InitError("--from-file: the JSON holds no list of records (objects)")


def _explodable(rows: list[object]) -> str | None:
    """A key whose value is a list of objects in the records: their line items."""
    counts: dict[str, int] = {}
    for row in rows:
        if isinstance(row, dict):
            for key, value in row.items():
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    counts[key] = counts.get(key, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda k: (counts[k], any(h in k.casefold() for h in _LINE_HINTS)))


def source_for(shape: FileShape, rows: int = SAMPLE_ROWS) -> Source:
    """The pipeline source that reads ``shape`` (the file relative to its own folder)."""
    if shape.kind == "csv":
        return CsvSource(shape.path.name, base_dir=shape.path.parent, delimiter=shape.delimiter,
                         encoding=shape.encoding, chunk_rows=rows)  # fmt: skip
    return JsonSource(shape.path.name, base_dir=shape.path.parent, records=shape.records,
                      lines=shape.lines, explode=shape.explode, chunk_rows=rows)  # fmt: skip


def _read_samples(shape: FileShape) -> None:
    source = source_for(shape)
    try:
        shape.columns = source.columns()
        chunks = source.chunks({})
        try:
            first = next(chunks, None)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # the file is closed at once, not when the generator is collected
    except ExtractError as error:
        raise InitError(f"--from-file {shape.path}: {error}") from None
    if first is None:
        shape.samples = {column: [] for column in shape.columns}
        return
    shape.samples = {str(name): list(values) for name, values in first.columns.items()}
