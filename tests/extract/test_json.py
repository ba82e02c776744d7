"""JsonSource: documents, JSON Lines, records paths, flattening, explode, exact numbers, errors."""

from __future__ import annotations

import json
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.extract.base import Chunk, ExtractError
from pipeline.extract.json import JsonChunk, JsonSource

REPO = Path(__file__).resolve().parents[2]

INVOICES = {
    "meta": {"exported": "2024-03-01"},
    "data": {
        "invoices": [
            {
                "id": 1,
                "supplier": {"name": "Müller GmbH", "address": {"city": "München"}},
                "total": 10.10,
                "tags": ["a", "b"],
                "items": [{"name": "Kaffee", "price": "4.20"}, {"name": "Tee", "qty": 2}],
            },
            {"id": 2, "supplier": {"name": "株式会社"}, "total": 0.30, "items": []},
            {"id": 3, "supplier": None, "total": 1e2, "items": [{"name": "Brot"}]},
        ]
    },
}


def _write(folder: Path, name: str, content: str | bytes) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)


def _chunks(tmp_path: Path, name: str, **options: object) -> list[Chunk]:
    source = JsonSource(name, base_dir=tmp_path, **options)  # type: ignore[arg-type]
    return list(source.chunks({}))


def _rows(chunks: list[Chunk]) -> list[tuple[str, dict[str, Any]]]:
    """Every row as ``(location, {column: value})``."""
    return [
        (chunk.location(index), {str(key): value for key, value in record.items()})
        for chunk in chunks
        for index, record in enumerate(chunk.records())
    ]


def _error(tmp_path: Path, name: str, **options: object) -> str:
    chunks = JsonSource(name, base_dir=tmp_path, **options).chunks({})  # type: ignore[arg-type]
    with pytest.raises(ExtractError) as caught:
        next(chunks)
    return str(caught.value)


def _lines(*records: object) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


# --- documents -----------------------------------------------------------------------------------
def test_a_records_path_flattens_nested_objects(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps(INVOICES))
    chunks = _chunks(tmp_path, "export.json", records="data.invoices")

    rows = _rows(chunks)
    assert [location for location, _ in rows] == [
        "export.json:data.invoices[0]",
        "export.json:data.invoices[1]",
        "export.json:data.invoices[2]",
    ]
    first = rows[0][1]
    assert first["supplier.name"] == "Müller GmbH"
    assert first["supplier.address.city"] == "München"
    assert first["tags"] == ["a", "b"]
    assert rows[1][1]["supplier.address.city"] is None
    assert rows[2][1]["supplier"] is None
    assert all(isinstance(chunk, JsonChunk) for chunk in chunks)


def test_a_top_level_list_needs_no_records_path(tmp_path: Path) -> None:
    _write(tmp_path, "list.json", json.dumps([{"id": 1}, {"id": 2, "extra": True}]))
    rows = _rows(_chunks(tmp_path, "list.json"))
    assert rows == [
        ("list.json:[0]", {"id": 1, "extra": None}),
        ("list.json:[1]", {"id": 2, "extra": True}),
    ]


def test_explode_gives_one_row_per_item_beside_the_record(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps(INVOICES))
    source = JsonSource("export.json", base_dir=tmp_path, records="data.invoices", explode="items")

    rows = _rows(list(source.chunks({})))

    assert [location for location, _ in rows] == [
        "export.json:data.invoices[0].items[0]",
        "export.json:data.invoices[0].items[1]",
        "export.json:data.invoices[1]",
        "export.json:data.invoices[2].items[0]",
    ]
    assert rows[0][1]["items.name"] == "Kaffee"
    assert rows[0][1]["items.qty"] is None
    assert rows[1][1]["items.qty"] == 2
    assert rows[1][1]["id"] == 1
    assert rows[2][1]["id"] == 2
    assert {key: rows[2][1][key] for key in ("items.name", "items.price", "items.qty")} == {
        "items.name": None,
        "items.price": None,
        "items.qty": None,
    }
    assert "items" not in source.columns()
    assert source.columns()[-3:] == ["items.name", "items.price", "items.qty"]


def test_numbers_stay_exact(tmp_path: Path) -> None:
    text = '[{"a": 0.1, "b": 0.2, "big": 12345678901234567890.123456789, "n": 7, "e": 1E+2,'
    text += ' "nan": NaN}]'
    _write(tmp_path, "n.json", text)
    row = _rows(_chunks(tmp_path, "n.json"))[0][1]

    assert isinstance(row["a"], Decimal)
    assert row["a"] + row["b"] == Decimal("0.3")
    assert row["big"] == Decimal("12345678901234567890.123456789")
    assert row["n"] == 7
    assert isinstance(row["n"], int)
    assert row["e"] == Decimal("1E+2")
    assert isinstance(row["nan"], Decimal)
    assert row["nan"].is_nan()


def test_chunks_never_split_a_record_and_share_columns(tmp_path: Path) -> None:
    records = [{"id": n, "items": [{"k": n}, {"k": n + 100}]} for n in range(5)]
    records[4]["late"] = "only here"
    _write(tmp_path, "e.json", json.dumps(records))

    chunks = _chunks(tmp_path, "e.json", explode="items", chunk_rows=3)

    assert [len(chunk) for chunk in chunks] == [4, 4, 2]
    assert [chunk.first_row for chunk in chunks] == [1, 5, 9]
    assert all(chunk.names == ["id", "late", "items.k"] for chunk in chunks)
    assert all(len(set(chunk.columns["id"])) == len(chunk) // 2 for chunk in chunks)


def test_columns_are_plain_lists_with_none(tmp_path: Path) -> None:
    _write(tmp_path, "l.json", json.dumps([{"a": 1}, {"b": "x"}]))
    chunk = _chunks(tmp_path, "l.json")[0]
    assert chunk.columns == {"a": [1, None], "b": [None, "x"]}


# --- JSON Lines ---------------------------------------------------------------------------------
def test_json_lines_are_located_by_line(tmp_path: Path) -> None:
    content = _lines({"id": 1}, {"id": 2, "s": {"n": "Ørsted"}}) + "\n" + _lines({"id": 4})
    _write(tmp_path, "ap.jsonl", content)
    rows = _rows(_chunks(tmp_path, "ap.jsonl", lines=True, chunk_rows=2))
    assert rows == [
        ("ap.jsonl:1", {"id": 1, "s.n": None}),
        ("ap.jsonl:2", {"id": 2, "s.n": "Ørsted"}),
        ("ap.jsonl:4", {"id": 4, "s.n": None}),
    ]


def test_json_lines_explode(tmp_path: Path) -> None:
    _write(tmp_path, "ap.jsonl", _lines({"id": 1, "items": [{"p": 1.5}, {"p": 2}]}, {"id": 2}))
    rows = _rows(_chunks(tmp_path, "ap.jsonl", lines=True, explode="items"))
    assert rows == [
        ("ap.jsonl:1 items[0]", {"id": 1, "items.p": Decimal("1.5")}),
        ("ap.jsonl:1 items[1]", {"id": 1, "items.p": 2}),
        ("ap.jsonl:2", {"id": 2, "items.p": None}),
    ]


@pytest.mark.slow  # a large file, to watch memory
def test_json_lines_stream_with_flat_memory(tmp_path: Path) -> None:
    """20,000 lines are read with about one chunk in memory, twice (check, then rows)."""
    record = {"id": 0, "supplier": {"name": "Müller GmbH"}, "total": 12.5, "note": "x" * 20}
    _write(tmp_path, "big.jsonl", _lines(*({**record, "id": n} for n in range(20_000))))
    source = JsonSource("big.jsonl", base_dir=tmp_path, lines=True, chunk_rows=1_000)
    next(iter(source.chunks({})))  # warm up: lazy imports are not rows
    rows = 0
    tracemalloc.start()
    try:
        for chunk in source.chunks({}):
            rows += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    whole = pd.DataFrame([{**record, "id": n} for n in range(20_000)])
    assert rows == 20_000
    assert peak < 2_000_000
    assert peak < whole.memory_usage(deep=True).sum() / 2


def test_a_malformed_line_stops_before_the_first_chunk(tmp_path: Path) -> None:
    good = _lines(*({"id": n} for n in range(50)))
    _write(tmp_path, "ap.jsonl", good + '{"id": 50, "x": }\n')
    message = _error(tmp_path, "ap.jsonl", lines=True, chunk_rows=5)
    assert message.startswith("ap.jsonl:51:17: malformed JSON (Expecting value)")


def test_a_line_that_is_not_an_object(tmp_path: Path) -> None:
    _write(tmp_path, "ap.jsonl", _lines({"id": 1}, [1, 2]))
    message = _error(tmp_path, "ap.jsonl", lines=True)
    assert message.startswith("ap.jsonl:2: a record must be a JSON object, not a list")


# --- errors --------------------------------------------------------------------------------------
def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    _write(tmp_path, "bad.json", '{\n  "invoices": [\n    {"id": 1,}\n  ]\n}\n')
    message = _error(tmp_path, "bad.json", records="invoices")
    assert message.startswith("bad.json:3:14: malformed JSON (Expecting property name")


def test_a_missing_records_key_lists_the_keys_there(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps(INVOICES))
    message = _error(tmp_path, "export.json", records="data.invoice")
    assert message.startswith("export.json: no key 'invoice' at data (keys there: ['invoices'])")
    assert "`records:`" in message


def test_records_that_are_not_a_list(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps(INVOICES))
    assert "'meta' is a object, not a list" in _error(tmp_path, "export.json", records="meta")
    assert "the document is a object" in _error(tmp_path, "export.json")


def test_a_record_that_is_not_an_object(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps({"invoices": [{"id": 1}, "oops"]}))
    message = _error(tmp_path, "export.json", records="invoices")
    assert message.startswith("export.json:invoices[1]: a record must be a JSON object")


def test_an_explode_field_that_is_not_a_list(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps([{"id": 1, "items": "none"}]))
    message = _error(tmp_path, "export.json", explode="items")
    assert message.startswith("export.json:[0]: 'items' is a string, not a list")


def test_an_explode_element_that_is_not_an_object(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", json.dumps([{"id": 1, "items": [{"a": 1}, 5]}]))
    message = _error(tmp_path, "export.json", explode="items")
    assert message.startswith("export.json:[0].items[1]: a record must be a JSON object")


def test_a_key_given_twice_is_refused_not_silently_dropped(tmp_path: Path) -> None:
    _write(tmp_path, "dup.json", '[{"id": 1, "amount": 1.00, "amount": 2.00}]')
    _write(tmp_path, "dup.jsonl", '{"id": 1}\n{"id": 2, "id": 3}\n')
    message = _error(tmp_path, "dup.json")
    assert message.startswith("dup.json: an object has the key 'amount' twice")
    assert _error(tmp_path, "dup.jsonl", lines=True).startswith("dup.jsonl:2: an object has")


def test_a_dotted_key_clashing_with_a_nested_object_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "clash.json", '[{"a": {"b": 1}, "a.b": 2}]')
    message = _error(tmp_path, "clash.json")
    assert message.startswith("clash.json:[0]: the column 'a.b' comes both from a dotted key")


def test_a_wrong_encoding_names_the_offset(tmp_path: Path) -> None:
    _write(tmp_path, "export.json", '[{"name": "Müller"}]'.encode("cp1252"))
    message = _error(tmp_path, "export.json")
    assert message.startswith("export.json:1: not valid utf-8-sig at byte offset 12")
    assert _rows(_chunks(tmp_path, "export.json", encoding="cp1252"))[0][1] == {"name": "Müller"}


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    _write(tmp_path, "bom.json", b"\xef\xbb\xbf" + b'[{"id": 1}]')
    _write(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + b'{"id": 1}\n')
    assert _rows(_chunks(tmp_path, "bom.json")) == [("bom.json:[0]", {"id": 1})]
    assert _rows(_chunks(tmp_path, "bom.jsonl", lines=True)) == [("bom.jsonl:1", {"id": 1})]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    message = _error(tmp_path, "exports/none.json")
    assert f"{tmp_path / 'exports/none.json'} does not exist" in message


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"lines": True, "records": "invoices"}, "`records:` applies to a JSON document"),
        ({"encoding": "klingon"}, "unknown encoding 'klingon'"),
        ({"chunk_rows": 0}, "chunk_rows must be at least 1"),
    ],
)
def test_bad_options_are_explained(options: dict[str, object], expected: str) -> None:
    with pytest.raises(ExtractError, match=expected):
        JsonSource("x.json", base_dir=Path(), **options)  # type: ignore[arg-type]


def test_describe() -> None:
    assert JsonSource("a.json", base_dir=Path()).describe() == "JSON a.json"
    assert JsonSource("a.jsonl", base_dir=Path(), lines=True).describe() == "JSON Lines a.jsonl"


# --- the shipped sample -------------------------------------------------------------------------
def test_the_merchant_sample_explodes_into_items() -> None:
    source = JsonSource(
        "samples/merchant_invoices.json", base_dir=REPO, records="invoices", explode="invoiceItems"
    )
    frames = [pd.DataFrame(dict(chunk.columns), dtype=object) for chunk in source.chunks({})]
    frame = pd.concat(frames, ignore_index=True)
    document = json.loads((REPO / "samples/merchant_invoices.json").read_text(encoding="utf-8"))

    assert len(frame) == sum(len(inv["invoiceItems"]) for inv in document["invoices"])
    assert frame["id"].nunique() == 10
    assert {"invoiceItems.price", "invoiceItems.vatPercentage", "supplierStoreId"} <= set(frame)
    assert all(isinstance(value, str) for value in frame["invoiceItems.price"])
    assert all(isinstance(value, Decimal) for value in frame["invoiceItems.vatPercentage"])
    dirty = frame[frame["id"] == 880106]
    assert set(dirty["completeDate"]) == {"2024-02-30"}
    chunk = next(iter(source.chunks({})))
    assert chunk.location(0) == "samples/merchant_invoices.json:invoices[0].invoiceItems[0]"
