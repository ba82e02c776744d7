"""Whole-column conversion: every fast path gives exactly what converting cell by cell gives."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.mapping.cells import BLANK, Mark, cell_converter, column_converter
from pipeline.mapping.transforms import Formats, LeafType, converter

KINDS: list[LeafType] = ["decimal", "integer", "date", "datetime", "currency", "string"]
EUROPEAN = Formats(decimal_separator=",", thousands_separator=".", date_formats=("%d.%m.%Y",))

texts = st.one_of(
    st.sampled_from(["", " ", "\t", "1", "1.50", " 2.5 ", "1.234,56", "-0", "1E+2", "NaN", "EUR",
                     "eur", "XXY", "2024-12-31", "31.12.2024", "2024-02-30", "x", "1_000"]),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    st.text(max_size=6),
)  # fmt: skip
cells = st.one_of(texts, st.none())


def _shown(value: object) -> object:
    return (value.kind, value.raw) if isinstance(value, Mark) else value


def _by_cell(kind: LeafType, formats: Formats, values: list[object]) -> list[object]:
    cell = cell_converter(converter(kind, formats))
    return [_shown(cell(value)) for value in values]


@pytest.mark.parametrize("formats", [Formats(), EUROPEAN], ids=["canonical", "european"])
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(values=st.lists(cells, min_size=1, max_size=12))
def test_a_column_converts_as_its_cells(
    kind: LeafType, formats: Formats, values: list[object]
) -> None:
    column = column_converter(converter(kind, formats), kind)
    assert [_shown(v) for v in column(list(values))] == _by_cell(kind, formats, values)


@pytest.mark.parametrize("kind", KINDS)
def test_a_clean_text_column_takes_the_fast_path_and_stays_exact(kind: LeafType) -> None:
    samples = {
        "decimal": ["1.50", "2", "-0.10"],
        "integer": ["1", "2", "30"],
        "date": ["2024-12-31", "2024-01-01", "2023-02-28"],
        "datetime": ["2024-12-31T10:00:00", "2024-01-01", "2023-02-28 23:59:59"],
        "currency": ["eur", "CHF", " usd "],
        "string": [" a ", "b", "c"],
    }[kind]
    values: list[object] = [*samples, None]
    out = column_converter(converter(kind), kind)(values)
    assert out[-1] is BLANK
    assert [_shown(v) for v in out] == _by_cell(kind, Formats(), values)


def test_one_bad_cell_marks_only_itself() -> None:
    out = column_converter(converter("decimal"), "decimal")(["1.50", "1,5", None, " ", "2"])
    assert out[0] == Decimal("1.50")
    assert out[4] == Decimal("2")
    assert isinstance(out[1], Mark)
    assert out[1].kind == "failed"
    assert out[2] is BLANK
    assert out[3] is BLANK


def test_native_dates_pass_unchanged_through_the_distinct_value_table() -> None:
    values: list[object] = [*[date(2024, 1, 1)] * 4, *[date(2024, 1, 2)] * 4]
    out = column_converter(converter("date"), "date")(values)
    assert out == ["2024-01-01T00:00:00Z"] * 4 + ["2024-01-02T00:00:00Z"] * 4
