"""CsvSource: chunks, row numbers, globs and every way a CSV export can be unreadable."""

from __future__ import annotations

import io
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import pytest

from pipeline.extract import csv as csv_module
from pipeline.extract.base import Chunk, ExtractError
from pipeline.extract.csv import CsvSource

HEADER = "invoice_no,supplier,amount\n"


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _rows(count: int, start: int = 1) -> str:
    return "".join(f"INV-{n},Supplier {n},{n}.50\n" for n in range(start, start + count))


def _chunks(tmp_path: Path, pattern: str, **options: object) -> list[Chunk]:
    return list(CsvSource(pattern, base_dir=tmp_path, **options).chunks({}))  # type: ignore[arg-type]


def _located(chunks: list[Chunk], column: str = "invoice_no") -> dict[str, str]:
    """value of ``column`` → location, over every row of every chunk."""
    return {
        str(value): chunk.location(index)
        for chunk in chunks
        for index, value in enumerate(chunk.columns[column])
    }


def _error(tmp_path: Path, pattern: str, **options: object) -> str:
    """The error of a source whose problem lies in its first chunk: it comes before that chunk."""
    source = CsvSource(pattern, base_dir=tmp_path, **options)  # type: ignore[arg-type]
    chunks = source.chunks({})
    with pytest.raises(ExtractError) as caught:
        next(chunks)  # the error comes before the first chunk
    return str(caught.value)


def _error_after(tmp_path: Path, pattern: str, **options: object) -> tuple[str, list[Chunk]]:
    """The error of a source whose problem lies further down, and the chunks read before it."""
    source = CsvSource(pattern, base_dir=tmp_path, **options)  # type: ignore[arg-type]
    before: list[Chunk] = []
    with pytest.raises(ExtractError) as caught:
        before.extend(source.chunks({}))
    return str(caught.value), before


# --- reading ----------------------------------------------------------------------------------
def test_chunks_carry_spreadsheet_row_numbers(tmp_path: Path) -> None:
    _write(tmp_path, "exports/ap.csv", HEADER + _rows(25))
    chunks = _chunks(tmp_path, "exports/ap.csv", chunk_rows=10)

    assert [len(chunk) for chunk in chunks] == [10, 10, 5]
    assert [chunk.first_row for chunk in chunks] == [2, 12, 22]
    assert {chunk.origin for chunk in chunks} == {"exports/ap.csv"}
    assert chunks[1].location(3) == "exports/ap.csv:15"
    assert chunks[1].columns["invoice_no"][3] == "INV-14"
    assert chunks[2].columns["invoice_no"] == [f"INV-{n}" for n in range(21, 26)]


def test_every_cell_is_text_and_empty_is_empty_string(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", "a,b,c\n007,,NA\nnull,1e5,\n")
    chunk = _chunks(tmp_path, "ap.csv")[0]

    assert list(chunk.records()) == [
        {"a": "007", "b": "", "c": "NA"},
        {"a": "null", "b": "1e5", "c": ""},
    ]


def test_a_short_row_is_padded_with_empty_cells(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER + "INV-1,Acme\n")
    chunk = _chunks(tmp_path, "ap.csv")[0]
    assert list(chunk.records()) == [{"invoice_no": "INV-1", "supplier": "Acme", "amount": ""}]


def test_a_glob_reads_files_in_sorted_order_each_with_its_rows(tmp_path: Path) -> None:
    _write(tmp_path, "exports/ap_2024-02.csv", HEADER + _rows(3, start=10))
    _write(tmp_path, "exports/ap_2024-01.csv", HEADER + _rows(4))
    _write(tmp_path, "exports/notes.txt", "not a csv")
    source = CsvSource("exports/ap_*.csv", base_dir=tmp_path, chunk_rows=3)

    chunks = list(source.chunks({}))

    assert [(chunk.origin, chunk.first_row) for chunk in chunks] == [
        ("exports/ap_2024-01.csv", 2),
        ("exports/ap_2024-01.csv", 5),
        ("exports/ap_2024-02.csv", 2),
    ]
    assert _located(chunks)["INV-4"] == "exports/ap_2024-01.csv:5"
    assert _located(chunks)["INV-12"] == "exports/ap_2024-02.csv:4"
    assert source.columns() == ["invoice_no", "supplier", "amount"]


def test_a_recursive_glob(tmp_path: Path) -> None:
    _write(tmp_path, "in/2024/a.csv", HEADER + _rows(1))
    _write(tmp_path, "in/2025/b.csv", HEADER + _rows(1, start=2))
    chunks = _chunks(tmp_path, "in/**/*.csv")
    assert [chunk.origin for chunk in chunks] == ["in/2024/a.csv", "in/2025/b.csv"]


def test_files_of_a_glob_must_share_the_header(tmp_path: Path) -> None:
    _write(tmp_path, "a.csv", HEADER + _rows(1))
    _write(tmp_path, "b.csv", "invoice_no,vendor,amount\n" + _rows(1))
    message = _error(tmp_path, "*.csv")
    assert message.startswith("b.csv:1: the header differs from a.csv:1")
    assert "only here: ['vendor']" in message


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + (HEADER + "INV-1,Müller,1\n").encode())
    source = CsvSource("bom.csv", base_dir=tmp_path)
    assert source.columns()[0] == "invoice_no"
    assert list(_chunks(tmp_path, "bom.csv")[0].records()) == [
        {"invoice_no": "INV-1", "supplier": "Müller", "amount": "1"}
    ]


def test_quoted_cells_keep_newlines_and_count_as_one_row(tmp_path: Path) -> None:
    content = (
        HEADER
        + 'INV-1,"Müller GmbH\nAbt. Einkauf",1\r\nINV-2,"a ""quoted"", b\r\nc",2\nINV-3,x,3\n'
    )
    _write(tmp_path, "ap.csv", content)
    chunks = _chunks(tmp_path, "ap.csv", chunk_rows=2)

    assert chunks[0].columns["supplier"] == [
        "Müller GmbH\nAbt. Einkauf",
        'a "quoted", b\r\nc',
    ]
    assert _located(chunks) == {"INV-1": "ap.csv:2", "INV-2": "ap.csv:3", "INV-3": "ap.csv:4"}


def test_blank_lines_are_dropped_but_still_counted(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER + "INV-1,a,1\n\n,,\nINV-4,b,2\n\nINV-6,c,3\n")
    chunks = _chunks(tmp_path, "ap.csv")
    assert _located(chunks) == {"INV-1": "ap.csv:2", "INV-4": "ap.csv:5", "INV-6": "ap.csv:7"}
    assert all("" not in chunk.columns["invoice_no"] for chunk in chunks)


def test_other_delimiter_quote_and_encoding(tmp_path: Path) -> None:
    content = "invoice_no;supplier;amount\nINV-1;'Caf\xe9; Ol\xe9';1.234,56\n"
    _write(tmp_path, "ap.csv", content.encode("cp1252"))
    chunks = _chunks(tmp_path, "ap.csv", delimiter=";", quotechar="'", encoding="cp1252")
    assert list(chunks[0].records()) == [
        {"invoice_no": "INV-1", "supplier": "Café; Olé", "amount": "1.234,56"}
    ]


def test_utf16_is_read_when_declared(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", (HEADER + "INV-1,株式会社,1\n").encode("utf-16"))
    chunk = _chunks(tmp_path, "ap.csv", encoding="utf-16")[0]
    assert chunk.columns["supplier"] == ["株式会社"]


def test_a_header_only_file_has_columns_and_no_chunks(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER)
    assert CsvSource("ap.csv", base_dir=tmp_path).columns() == ["invoice_no", "supplier", "amount"]
    assert _chunks(tmp_path, "ap.csv") == []


def test_columns_reads_only_the_header(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER + "INV-1,a,1,EXTRA\n" + "x\x00y\n")
    assert CsvSource("ap.csv", base_dir=tmp_path).columns() == ["invoice_no", "supplier", "amount"]


def test_a_ten_megabyte_cell_is_read_whole(tmp_path: Path) -> None:
    note = "x" * 10_000_000
    _write(tmp_path, "ap.csv", f'invoice_no,note\nINV-1,"{note}"\nINV-2,short\n')
    chunks = _chunks(tmp_path, "ap.csv")
    assert len(str(chunks[0].columns["note"][0])) == 10_000_000
    assert _located(chunks)["INV-2"] == "ap.csv:3"


@pytest.mark.slow  # a large file, to watch memory
def test_memory_stays_flat_however_large_the_file(tmp_path: Path) -> None:
    """A 200,000-row file (~8 MB) is read with about one chunk in memory."""
    path = _write(tmp_path, "big.csv", HEADER + _rows(200_000))
    source = CsvSource("big.csv", base_dir=tmp_path, chunk_rows=5_000)
    rows = 0
    tracemalloc.start()
    try:
        for chunk in source.chunks({}):
            rows += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 200_000
    assert peak < path.stat().st_size / 2


class _CountingFile(io.FileIO):
    """A file that adds every byte read from it to ``counts[name]``."""

    counts: Counter[str]

    def readinto(self, buffer: bytearray | memoryview) -> int | None:  # type: ignore[override]
        done = super().readinto(buffer)
        self.counts[Path(str(self.name)).name] += done or 0
        return done

    def readall(self) -> bytes:
        data = super().readall()
        self.counts[Path(str(self.name)).name] += len(data)
        return data


def _spy_on_reads(monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], Counter[str]]:
    """Files opened (by name) and bytes read from them, through the source's one opener."""
    opened: Counter[str] = Counter()
    read: Counter[str] = Counter()

    def open_counted(path: Path) -> BinaryIO:
        opened[path.name] += 1
        raw = _CountingFile(path)
        raw.counts = read
        return io.BufferedReader(raw)

    monkeypatch.setattr(csv_module, "open_file", open_counted)
    return opened, read


def test_each_file_is_read_once_plus_one_header_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _write(tmp_path, "in/a.csv", HEADER + _rows(30_000))
    second = _write(tmp_path, "in/b.csv", HEADER + _rows(30_000, start=30_001))
    opened, read = _spy_on_reads(monkeypatch)
    source = CsvSource("in/*.csv", base_dir=tmp_path, chunk_rows=1_000)

    assert source.columns() == ["invoice_no", "supplier", "amount"]
    assert opened == {"a.csv": 1}
    assert read["a.csv"] < 64 * 1024, "columns() reads the header, not the body"

    rows = sum(len(chunk) for chunk in source.chunks({}))

    assert rows == 60_000
    assert opened == {"a.csv": 2, "b.csv": 2}, "one header check and one streaming read each"
    for path in (first, second):
        assert read[path.name] <= path.stat().st_size + 64 * 1024, "the body is read once"


def test_a_header_rewritten_after_its_check_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "ap.csv", HEADER + _rows(2))
    source = CsvSource("ap.csv", base_dir=tmp_path)
    assert source.columns() == ["invoice_no", "supplier", "amount"]
    path.write_text("invoice_no,vendor,amount\n" + _rows(2), encoding="utf-8")
    with pytest.raises(ExtractError, match=r"^ap.csv:1: the header changed between its check"):
        next(source.chunks({}))


def test_an_empty_header_cell_is_named_by_its_position(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", "invoice_no,,amount\nINV-1,x,1\n")
    source = CsvSource("ap.csv", base_dir=tmp_path)
    assert source.columns() == ["invoice_no", "Unnamed: 1", "amount"]
    assert list(next(source.chunks({})).records()) == [
        {"invoice_no": "INV-1", "Unnamed: 1": "x", "amount": "1"}
    ]


# --- unreadable input ----------------------------------------------------------------------------
def test_a_missing_file_is_named(tmp_path: Path) -> None:
    message = _error(tmp_path, "exports/ap.csv")
    assert f"{tmp_path / 'exports/ap.csv'} does not exist" in message
    assert "check the source path" in message


def test_a_glob_matching_nothing_is_named(tmp_path: Path) -> None:
    assert "the pattern matches no file under" in _error(tmp_path, "exports/*.csv")
    with pytest.raises(ExtractError, match="matches no file"):
        CsvSource("exports/*.csv", base_dir=tmp_path).columns()


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    assert "is a directory, not a file" in _error(tmp_path, "exports")


def test_an_empty_file_needs_a_header(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", "")
    assert _error(tmp_path, "ap.csv").startswith("ap.csv:1: the file is empty")


def test_a_wrong_encoding_names_line_offset_and_fix(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", (HEADER + "INV-1,Müller,1\n").encode("cp1252"))
    message = _error(tmp_path, "ap.csv")
    assert message.startswith("ap.csv:2: not valid utf-8-sig at byte offset 34")
    assert "set `encoding:`" in message


def test_a_bad_byte_deep_in_the_file_stops_the_stream_there(tmp_path: Path) -> None:
    """One read: a problem far down is found when the stream reaches it, after the clean
    chunks before it (as a query failing half-way); the message is the same."""
    _write(tmp_path, "ap.csv", (HEADER + _rows(60_000)).encode() + b"INV-X,\xff,1\n")
    message, before = _error_after(tmp_path, "ap.csv", chunk_rows=1_000)
    assert message.startswith("ap.csv:60002: not valid utf-8-sig at byte offset")
    assert before, "the chunks before the bad byte were read"
    assert all(value != "INV-X" for chunk in before for value in chunk.columns["invoice_no"])
    assert sum(map(len, before)) < 60_000


def test_a_ragged_row_names_the_row(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER + _rows(10) + "INV-11,Acme,1,50\n" + _rows(5, 12))
    message, before = _error_after(tmp_path, "ap.csv", chunk_rows=2)
    assert message.startswith("ap.csv:12: row has 4 cells but the header has 3")
    assert "`delimiter:`" in message
    assert [chunk.first_row for chunk in before] == [2, 4, 6, 8, 10]
    assert message == _error(tmp_path, "ap.csv"), "in the first chunk: before any chunk"


def test_an_extra_cell_in_the_first_row_is_refused_not_shifted(tmp_path: Path) -> None:
    """pandas would take the first column as an index and shift every value one column left."""
    _write(tmp_path, "ap.csv", HEADER + "INV-1,Acme,1,surplus\n" + _rows(2, 2))
    message = _error(tmp_path, "ap.csv")
    assert message.startswith("ap.csv:2: row has 4 cells but the header has 3")


def test_an_unclosed_quote_names_the_row(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER + _rows(3) + 'INV-4,"Acme,1\n' + _rows(3, 5))
    message = _error(tmp_path, "ap.csv")
    assert message.startswith("ap.csv:5: a quoted cell")
    assert "never closed" in message


def test_nul_bytes_are_refused_not_stripped(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER.encode() + b"INV-1,Ac\x00me,1\n")
    message = _error(tmp_path, "ap.csv")
    assert message.startswith("ap.csv:2: the file contains a NUL byte")
    assert "encoding: utf-16" in message


def test_utf16_read_as_utf8_is_caught(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", (HEADER + "INV-1,a,1\n").encode("utf-16"))
    assert "not valid utf-8-sig at byte offset 0" in _error(tmp_path, "ap.csv")


def test_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", "amount,supplier,amount\n1,a,2\n")
    message = _error(tmp_path, "ap.csv")
    assert message.startswith("ap.csv:1: column name(s) ['amount'] appear more than once")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"delimiter": ";;"}, "delimiter must be one character"),
        ({"quotechar": ""}, "quotechar must be one character"),
        ({"chunk_rows": 0}, "chunk_rows must be at least 1"),
    ],
)
def test_bad_options_are_explained(options: dict[str, object], expected: str) -> None:
    with pytest.raises(ExtractError, match=expected):
        CsvSource("ap.csv", base_dir=Path(), **options)  # type: ignore[arg-type]


def test_describe_names_the_pattern() -> None:
    assert CsvSource("exports/*.csv", base_dir=Path()).describe() == "CSV exports/*.csv"


def test_the_chunks_concatenate_to_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "ap.csv", HEADER + _rows(7))
    chunks = _chunks(tmp_path, "ap.csv", chunk_rows=3)
    whole = [value for chunk in chunks for value in chunk.columns["invoice_no"]]
    assert whole == [f"INV-{n}" for n in range(1, 8)]
    assert all(chunk.names == ["invoice_no", "supplier", "amount"] for chunk in chunks)
