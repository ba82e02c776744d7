"""Every conversion and named transform, with the values they accept and the ones they refuse."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from pipeline.mapping.cells import BLANK, Mark, column_converter
from pipeline.mapping.transforms import (
    TRANSFORMS,
    ConversionError,
    Formats,
    converter,
    date_converter,
    date_format_problem,
    datetime_converter,
    decimal_converter,
    integer_converter,
    is_blank,
    to_auto,
    to_boolean,
    to_currency,
    to_text,
)


def refused(convert, value: object) -> ConversionError:  # type: ignore[no-untyped-def]
    with pytest.raises(ConversionError) as caught:
        convert(value)
    return caught.value


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n", math.nan, pd.NA, pd.NaT, float("nan")])
def test_blank_cells(value: object) -> None:
    assert is_blank(value)


@pytest.mark.parametrize("value", ["0", "x", 0, 0.0, Decimal(0), False, "\u200f", date(2024, 1, 1)])
def test_non_blank_cells(value: object) -> None:
    assert not is_blank(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200.00", "200.00"),
        ("-12.5", "-12.5"),
        ("+7", "7"),
        (".5", "0.5"),
        ("  42.10 ", "42.10"),
        ("0.000001", "0.000001"),
    ],
)
def test_decimals_keep_their_scale(text: str, expected: str) -> None:
    value = decimal_converter()(text)
    assert isinstance(value, Decimal)
    assert f"{value:f}" == expected


@pytest.mark.parametrize(
    ("text", "decimal", "thousands", "expected"),
    [
        ("1,234.56", ".", ",", "1234.56"),
        ("1.234,56", ",", ".", "1234.56"),
        ("1.234.567,8", ",", ".", "1234567.8"),
        ("1234,56", ",", ".", "1234.56"),
        ("1 234,56", ",", " ", "1234.56"),
        ("1'234.50", ".", "'", "1234.50"),
        ("-0,50", ",", "", "-0.50"),
    ],
)
def test_decimals_follow_the_declared_separators(
    text: str, decimal: str, thousands: str, expected: str
) -> None:
    assert f"{decimal_converter(decimal, thousands)(text):f}" == expected


@pytest.mark.parametrize(
    ("text", "decimal", "thousands"),
    [
        ("NaN", ".", ""),
        ("nan", ".", ""),
        ("inf", ".", ""),
        ("-Infinity", ".", ""),
        ("1e309", ".", ""),
        ("1E5", ".", ""),
        ("12,3x", ",", "."),
        ("1,234.56", ".", ""),  # a thousands separator that was not declared
        ("12.34", ",", "."),  # ambiguous: not a group of three
        ("1_000", ".", ""),
        ("١٢٣", ".", ""),  # Arabic-Indic digits
        ("0x1F", ".", ""),
        ("1" * 65, ".", ""),
        ("--1", ".", ""),
        ("1.2.3", ".", ""),
    ],
)
def test_text_that_is_not_a_number_is_refused(text: str, decimal: str, thousands: str) -> None:
    error = refused(decimal_converter(decimal, thousands), text)
    assert error.rule == "decimal"
    assert error.hint is not None


def test_out_of_range_amounts_are_refused() -> None:
    error = refused(decimal_converter(), "1" + "0" * 18)
    assert error.message.endswith("is out of range (more than 18 integer digits)")
    assert decimal_converter()("9" * 18) == Decimal("9" * 18)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("200.00"), "200.00"),
        (Decimal("1E+2"), "1E+2"),
        (7, "7"),
        (0.1, "0.1"),
        (2.50, "2.5"),
    ],
)
def test_native_numbers_stay_exact(value: object, expected: str) -> None:
    assert str(decimal_converter()(value)) == expected


@pytest.mark.parametrize(
    "value",
    [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1E+309"), math.inf, True,
     date(2024, 1, 1), [1]],
)  # fmt: skip
def test_native_values_that_are_not_numbers_are_refused(value: object) -> None:
    assert refused(decimal_converter(), value).rule == "decimal"


def test_integers() -> None:
    convert = integer_converter(".")
    assert convert("1.234") == 1234
    assert convert(Decimal("3.00")) == 3
    assert convert(4.0) == 4
    assert convert(" 12 ") == 12
    for bad in ("1.5", "x", Decimal("2.5"), 2**70, True, "1e3"):
        assert refused(convert, bad).rule == "integer"


@pytest.mark.parametrize("value", ["true", "TRUE", "yes", "Y", "1", "x", "t", True, 1])
def test_true_values(value: object) -> None:
    assert to_boolean(value) is True


@pytest.mark.parametrize("value", ["false", "No", "n", "0", "F", False, 0, Decimal(0)])
def test_false_values(value: object) -> None:
    assert to_boolean(value) is False


@pytest.mark.parametrize("value", ["maybe", "2", 2, "ja", Decimal("0.5")])
def test_other_values_are_not_booleans(value: object) -> None:
    error = refused(to_boolean, value)
    assert (error.rule, error.hint) == (
        "boolean",
        "map the source codes with `map:` (e.g. {J: true, N: false})",
    )


def test_currencies_are_iso_4217() -> None:
    assert to_currency("eur") == "EUR"
    assert to_currency(" CHF ") == "CHF"
    assert to_currency("LTL") == "LTL"  # withdrawn in 2015: historical invoices
    for bad in ("XXY", "EURO", "XXX", "XTS", "€", 978):
        assert refused(to_currency, bad).rule == "currency"


def test_dates_go_out_as_utc_midnight_or_plain_dates() -> None:
    european = date_converter(("%d.%m.%Y",), UTC, "datetime")
    assert european("31.12.2024") == "2024-12-31T00:00:00Z"
    assert european(date(2024, 2, 29)) == "2024-02-29T00:00:00Z"
    assert european(datetime(2024, 2, 29, 23, 0)) == "2024-02-29T00:00:00Z"
    plain = date_converter(("iso",), UTC, "date")
    assert plain("2024-12-31") == "2024-12-31"
    assert plain("2024-12-31T10:00:00") == "2024-12-31"
    berlin = date_converter(("iso",), ZoneInfo("Europe/Berlin"), "date")
    assert berlin(datetime(2024, 12, 31, 23, 30, tzinfo=UTC)) == "2025-01-01"


@pytest.mark.parametrize(
    "text", ["31.02.2021", "29.02.2023", "32.01.2024", "00.00.0000", "2024-01-01", "x"]
)
def test_impossible_or_misformatted_dates_are_refused(text: str) -> None:
    error = refused(date_converter(("%d.%m.%Y",), UTC, "datetime"), text)
    assert error.rule == "date_format"
    assert error.message == f"{text} is not a date in the format %d.%m.%Y"
    assert error.hint is not None
    assert "`format:`" in error.hint


def test_several_date_formats_are_tried_in_order() -> None:
    convert = date_converter(("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%y"), UTC, "date")
    assert [convert(text) for text in ("01.02.2024", "2024-02-01", "01/02/24")] == [
        "2024-02-01"
    ] * 3


def test_datetimes_go_out_in_utc() -> None:
    berlin = datetime_converter(("iso",), ZoneInfo("Europe/Berlin"))
    assert berlin("2024-07-21 19:32:28") == "2024-07-21T17:32:28Z"
    assert berlin("2019-07-21T17:32:28Z") == "2019-07-21T17:32:28Z"
    assert berlin(datetime(2024, 1, 1, 12, 0, 0, 5000)) == "2024-01-01T11:00:00.005000Z"
    assert berlin(date(2024, 1, 1)) == "2023-12-31T23:00:00Z"
    custom = datetime_converter(("%d.%m.%Y %H:%M",), UTC)
    assert custom("21.07.2019 17:32") == "2019-07-21T17:32:00Z"
    assert refused(custom, "21.07.2019").rule == "datetime_format"


NO_DIRECTIVE = "has no strptime directive (%d, %m, %Y …) and is not 'iso'"
BAD_FORMAT = "is not a valid strptime format: "
Q = "'%d.%m.%Q'"


@pytest.mark.parametrize(
    ("fmt", "problem"),
    [
        ("iso", None),
        ("%d.%m.%Y", None),
        ("%Y-%m-%dT%H:%M:%S%z", None),
        ("DD.MM.YYYY", f"date format 'DD.MM.YYYY' {NO_DIRECTIVE}; did you mean '%d.%m.%Y'?"),
        ("yyyy-MM-dd", f"date format 'yyyy-MM-dd' {NO_DIRECTIVE}; did you mean '%Y-%m-%d'?"),
        ("%d.%m.%Q", f"date format '%d.%m.%Q' {BAD_FORMAT}'Q' is a bad directive in format {Q}"),
        ("plain", f"date format 'plain' {NO_DIRECTIVE}"),
    ],
)  # fmt: skip
def test_date_formats_are_checked(fmt: str, problem: str | None) -> None:
    assert date_format_problem(fmt) == problem


def test_text_of_native_values() -> None:
    assert to_text(546189.0) == "546189"
    assert to_text(Decimal("1E+3")) == "1000"
    assert to_text(True) == "true"
    assert to_text(date(2024, 1, 2)) == "2024-01-02"
    assert to_text("  a b  ") == "a b"
    assert refused(to_text, b"\x00\x01").rule == "text"
    assert refused(to_text, math.inf).rule == "text"


def test_auto_keeps_json_types() -> None:
    assert to_auto(" x ") == "x"
    assert to_auto(5) == 5
    assert to_auto(Decimal("1.50")) == Decimal("1.50")
    assert to_auto(0.25) == Decimal("0.25")
    assert to_auto(datetime(2024, 1, 1, 8)) == "2024-01-01T08:00:00"
    assert refused(to_auto, Decimal("NaN")).rule == "decimal"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("upper", "abc", "ABC"),
        ("lower", "ÄBC", "äbc"),
        ("title", "müller gmbh", "Müller Gmbh"),
        ("collapse_spaces", " a \t b\n c ", "a b c"),
        ("remove_spaces", " DE 12 34 ", "DE1234"),
        ("digits", "+49 (0) 30-123", "49030123"),
        ("strip_leading_zeros", "000123", "123"),
        ("strip_leading_zeros", "000", "0"),
        ("last4", "DE89370400440532013000", "3000"),
        ("last4", "12", "12"),
    ],
)
def test_named_transforms(name: str, text: str, expected: str) -> None:
    assert TRANSFORMS[name](text) == expected


def test_converter_dispatch() -> None:
    formats = Formats(decimal_separator=",", thousands_separator=".", date_formats=("%d.%m.%Y",))
    assert converter("decimal", formats)("1.234,50") == Decimal("1234.50")
    assert converter("integer", formats)("1.234") == 1234
    assert converter("date", formats)("31.12.2024") == "2024-12-31T00:00:00Z"
    assert converter("string")(" x ") == "x"
    assert converter("currency")("usd") == "USD"
    assert converter("boolean")("yes") is True
    assert converter("auto")(3) == 3


def test_whole_column_conversion_marks_blanks_and_failures() -> None:
    column = column_converter(decimal_converter(), "decimal")
    out = column(["1.50", "", None, "x", "2"])
    assert (out[0], out[4]) == (Decimal("1.50"), Decimal("2"))
    assert out[1] is BLANK
    assert out[2] is BLANK
    assert isinstance(out[3], Mark)
    assert (out[3].kind, out[3].raw) == ("failed", "x")


def test_whole_column_fast_paths_keep_values_exact() -> None:
    decimals = column_converter(decimal_converter(), "decimal")
    values: list[object] = [Decimal("1.0"), Decimal("1.00"), Decimal("-3.10")]
    assert [str(v) for v in decimals(values)] == ["1.0", "1.00", "-3.10"]
    assert isinstance(decimals([Decimal("NaN"), Decimal(1)])[0], Mark)
    assert isinstance(decimals([Decimal("1E+400")])[0], Mark)
    strings = column_converter(converter("string"), "string")
    assert strings([" a ", "", "b"]) == ["a", BLANK, "b"]
    ints = column_converter(integer_converter(), "integer")
    assert ints([1, 2, 3]) == [1, 2, 3]
    assert isinstance(ints([2**64])[0], Mark)
    codes = column_converter(to_currency, None)
    out = codes(["eur", "eur", "XXY", "eur"])
    assert out[0] == out[1] == out[3] == "EUR"
    assert isinstance(out[2], Mark)
    assert out[2].error is not None
    assert out[2].error.rule == "currency"
    mixed = column_converter(to_currency, None)
    assert mixed(["eur", 1.5, None])[2] is BLANK
