"""Value conversions and the registry of named text transforms (no eval: names map to functions).

A converter takes one non-blank source value (text from CSV, native values from SQL and JSON) and
returns the value to send, or raises :class:`ConversionError` naming the rule it broke. Converters
are built once per mapping field by :func:`converter`; the engine calls them per cell.

Outputs: ``string`` and ``currency`` give text, ``decimal`` an exact :class:`~decimal.Decimal` (its
scale kept: ``200.00`` stays ``200.00``), ``integer`` an int, ``boolean`` a bool, ``date`` and
``datetime`` ISO-8601 text (see :class:`DateStyle`), ``auto`` a JSON-ready value as the source gave
it (used for ``extra:`` and ``custom_json``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Literal

import pandas as pd

from pipeline.errors import ItemError
from pipeline.failures import shorten
from pipeline.mapping.currencies import ISO_4217

LeafType = Literal[
    "string", "decimal", "integer", "date", "datetime", "boolean", "currency", "auto"
]
DateStyle = Literal["datetime", "date"]
"""How a ``date`` goes out: ``datetime`` → ``2024-12-31T00:00:00Z`` (AppZen's own examples),
``date`` → ``2024-12-31``."""

Converter = Callable[[object], object]

MAX_NUMBER_CHARS = 64
MAX_INTEGER_DIGITS = 18  # 10**18 is beyond any invoice amount; 1e309 is a typo, not money
MAX_INT = 2**63 - 1
ISO = "iso"
_NA = pd.NA
_NAT = pd.NaT


class ConversionError(ItemError):
    """A source value does not convert: ``rule`` names the check, ``hint`` the fix if known (the
    row fails; the run goes on)."""

    def __init__(self, rule: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.hint = hint


def is_blank(value: object) -> bool:
    """True for a missing cell: ``None``, NaN, pandas NA/NaT, empty or whitespace-only text."""
    if value is None:
        return True
    kind = value.__class__
    if kind is str:
        return value == "" or value.isspace()  # type: ignore[attr-defined]
    if kind is float:
        return math.isnan(value)  # type: ignore[arg-type]
    return value is _NA or value is _NAT


def text_or_none(value: object) -> str | None:
    """A cell as text (:func:`to_text`), or ``None`` when it is blank or no text can be made of
    it: how ERP status and error cells are read, by sync and by the status read alike."""
    if is_blank(value):
        return None
    try:
        return to_text(value)
    except ConversionError:
        return None


def to_text(value: object) -> str:
    """A source value as text: integral floats lose their ``.0`` (pandas turns int columns with
    gaps into floats), decimals are written without exponent, dates in ISO form."""
    if value.__class__ is str:
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError("text", f"{value!r} is not a value")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConversionError("text", f"{value} is not a value")
        return f"{value:f}"
    if isinstance(value, int | date):
        return value.isoformat() if isinstance(value, date) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raise ConversionError(
            "text", "binary data is not text", "cast the column to text in the query"
        )
    return str(value).strip()


# --- named text transforms ---------------------------------------------------------------------
def _last4(text: str) -> str:
    return text[-4:]


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "upper": str.upper,
    "lower": str.lower,
    "title": str.title,
    "collapse_spaces": lambda text: " ".join(text.split()),
    "remove_spaces": lambda text: "".join(text.split()),
    "digits": lambda text: "".join(ch for ch in text if ch.isdigit()),
    "strip_leading_zeros": lambda text: text.lstrip("0") or ("0" if text else ""),
    "last4": _last4,
}
"""Text transforms a mapping may name under ``transform:``, applied in the order given."""


# --- numbers -----------------------------------------------------------------------------------
def _number_pattern(decimal_separator: str, thousands_separator: str) -> re.Pattern[str]:
    dec = re.escape(decimal_separator)
    whole = r"[0-9]+"
    if thousands_separator:
        whole = rf"(?:[0-9]{{1,3}}(?:{re.escape(thousands_separator)}[0-9]{{3}})+|[0-9]+)"
    return re.compile(rf"[+-]?(?:{whole}(?:{dec}[0-9]*)?|{dec}[0-9]+)")


def _checked(number: Decimal, shown: object) -> Decimal:
    if not number.is_finite():
        raise ConversionError("decimal", f"{shorten(shown)} is not a number")
    if number and number.adjusted() >= MAX_INTEGER_DIGITS:
        raise ConversionError(
            "decimal",
            f"{shorten(shown)} is out of range (more than {MAX_INTEGER_DIGITS} integer digits)",
            "check the source value; amounts this large are a data error",
        )
    return number


def decimal_converter(
    decimal_separator: str = ".", thousands_separator: str = ""
) -> Callable[[object], Decimal]:
    """Exact decimals: text per the declared separators (``1.234,56``), native numbers as given."""
    pattern = _number_pattern(decimal_separator, thousands_separator)
    seps = f"decimal separator {decimal_separator!r}" + (
        f", thousands separator {thousands_separator!r}" if thousands_separator else ""
    )

    def convert(value: object) -> Decimal:
        if value.__class__ is str:
            text = value.strip()
            if len(text) > MAX_NUMBER_CHARS or not pattern.fullmatch(text):
                raise ConversionError(
                    "decimal",
                    f"{shorten(text)} is not a decimal number ({seps})",
                    "fix the source value, or set `decimal_separator:` / `thousands_separator:`",
                )
            if thousands_separator:
                text = text.replace(thousands_separator, "")
            if decimal_separator != ".":
                text = text.replace(decimal_separator, ".")
            return _checked(Decimal(text), value)
        return _native_decimal(value)

    return convert


def _native_decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return _checked(value, value)
    if isinstance(value, bool):
        raise ConversionError("decimal", f"{value} is a boolean, not a number")
    if isinstance(value, int):
        return _checked(Decimal(value), value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConversionError("decimal", f"{value!r} is not a number")
        return _checked(Decimal(repr(value)), value)
    raise ConversionError("decimal", f"{shorten(value)} ({type(value).__name__}) is not a number")


def integer_converter(thousands_separator: str = "") -> Converter:
    """Whole numbers: digit text (with the thousands separator), ints, integral decimals."""
    as_decimal = decimal_converter("," if thousands_separator == "." else ".", thousands_separator)

    def convert(value: object) -> int:
        try:
            number = as_decimal(value)
        except ConversionError as error:
            raise ConversionError("integer", error.message.replace("decimal", "whole")) from None
        if number != number.to_integral_value() or abs(number) > MAX_INT:
            raise ConversionError("integer", f"{shorten(value)} is not a whole number")
        return int(number)

    return convert


# --- booleans, currencies, text ----------------------------------------------------------------
_TRUE = frozenset({"true", "t", "yes", "y", "1", "x"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def to_boolean(value: object) -> bool:
    """``true/false``, ``yes/no``, ``y/n``, ``1/0``, ``x`` (a ticked box), any case; bools; 0/1."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) and value in (0, 1):
        return bool(value)
    if value.__class__ is str:
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ConversionError(
        "boolean",
        f"{shorten(value)} is not a yes/no value (true/false, yes/no, y/n, 1/0)",
        "map the source codes with `map:` (e.g. {J: true, N: false})",
    )


def to_currency(value: object) -> str:
    """An ISO-4217 code such as ``EUR`` (case-insensitive in the source, upper case out)."""
    if value.__class__ is not str:
        raise ConversionError("currency", f"{shorten(value)} is not a currency code")
    code = value.strip().upper()
    if code not in ISO_4217:
        raise ConversionError(
            "currency",
            f"{shorten(value)} is not an ISO-4217 currency code",
            "fix the currency in the source, or translate ERP codes with `map:`",
        )
    return code


def to_string(value: object) -> str:
    """Text, stripped of surrounding blanks."""
    return to_text(value)


def to_auto(value: object) -> object:
    """A JSON-ready value as the source gave it (``extra:`` and ``custom_json``)."""
    if value.__class__ is str:
        return value.strip()
    if isinstance(value, bool | int):
        return value
    if isinstance(value, Decimal | float):
        return _native_decimal(value)
    return to_text(value)


# --- dates -------------------------------------------------------------------------------------
_DIRECTIVE = re.compile(r"%[aAbBcdfGHIjmMpSuUVwWxXyYzZ%]")
_TOKENS = (
    ("YYYY", "%Y"), ("yyyy", "%Y"), ("YY", "%y"), ("yy", "%y"), ("DD", "%d"), ("dd", "%d"),
    ("MM", "%m"), ("HH", "%H"), ("hh", "%H"), ("mm", "%M"), ("SS", "%S"), ("ss", "%S"),
)  # fmt: skip
_SAMPLE = datetime(2024, 12, 31, 23, 59, 58, tzinfo=UTC)


def date_format_problem(fmt: str) -> str | None:
    """Why ``fmt`` is not a usable strptime format (or ``"iso"``), or None if it is."""
    if fmt == ISO:
        return None
    if not _DIRECTIVE.search(fmt):
        suggestion = fmt
        for token, directive in _TOKENS:
            suggestion = suggestion.replace(token, directive)
        hint = f"; did you mean {suggestion!r}?" if _DIRECTIVE.search(suggestion) else ""
        return (
            f"date format {fmt!r} has no strptime directive (%d, %m, %Y …) and is not 'iso'{hint}"
        )
    try:
        datetime.strptime(_SAMPLE.strftime(fmt), fmt)
    except ValueError as error:
        return f"date format {fmt!r} is not a valid strptime format: {error}"
    return None


def _parse_text(text: str, formats: tuple[str, ...]) -> datetime | date | None:
    for fmt in formats:
        try:
            if fmt == ISO:
                return datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _parsed(value: object, formats: tuple[str, ...], rule: str) -> date:
    if isinstance(value, date):
        return value
    if value.__class__ is str:
        text = value.strip()
        parsed = _parse_text(text, formats) if len(text) <= MAX_NUMBER_CHARS else None
        if parsed is not None:
            return parsed
        shown = " or ".join(formats)
        raise ConversionError(
            rule,
            f"{shorten(text)} is not a date in the format {shown}",
            f"date {shorten(text)} is not a valid date for {shown}: fix the source, or set "
            "`format:` (strptime, e.g. '%d.%m.%Y')",
        )
    raise ConversionError(rule, f"{shorten(value)} ({type(value).__name__}) is not a date")


def _to_utc(moment: datetime, zone: tzinfo) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def date_converter(formats: tuple[str, ...], zone: tzinfo, style: DateStyle) -> Converter:
    """Calendar dates from text (the formats in order), dates or datetimes (the local day)."""
    cache: dict[str, str] = {}

    def convert(value: object) -> str:
        if value.__class__ is str:
            hit = cache.get(value)
            if hit is not None:
                return hit
        moment = _parsed(value, formats, "date_format")
        if isinstance(moment, datetime):
            moment = moment.astimezone(zone).date() if moment.tzinfo else moment.date()
        text = moment.isoformat() + ("T00:00:00Z" if style == "datetime" else "")
        if value.__class__ is str:
            if len(cache) > 4096:
                cache.clear()
            cache[value] = text
        return text

    return convert


def datetime_converter(formats: tuple[str, ...], zone: tzinfo) -> Converter:
    """Moments as UTC ``2019-07-21T17:32:28Z``; naive values are read in ``zone``."""

    def convert(value: object) -> str:
        moment = _parsed(value, formats, "datetime_format")
        if not isinstance(moment, datetime):
            moment = datetime(moment.year, moment.month, moment.day)
        utc = _to_utc(moment, zone)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ")

    return convert


@dataclass(frozen=True, slots=True)
class Formats:
    """The number and date formats one field is read with."""

    decimal_separator: str = "."
    thousands_separator: str = ""
    date_formats: tuple[str, ...] = (ISO,)
    datetime_formats: tuple[str, ...] = (ISO,)
    zone: tzinfo = UTC
    date_style: DateStyle = "datetime"


CANONICAL = Formats()
"""How ``const:``, ``default:`` and ``map:`` values in a mapping file are read: ``.`` decimals,
ISO dates."""


def converter(kind: LeafType, formats: Formats = CANONICAL) -> Converter:
    """The converter for one leaf type read with ``formats``."""
    if kind == "decimal":
        return decimal_converter(formats.decimal_separator, formats.thousands_separator)
    if kind == "integer":
        return integer_converter(formats.thousands_separator)
    if kind == "date":
        return date_converter(formats.date_formats, formats.zone, formats.date_style)
    if kind == "datetime":
        return datetime_converter(formats.datetime_formats, formats.zone)
    simple: dict[LeafType, Converter] = {
        "string": to_string,
        "boolean": to_boolean,
        "currency": to_currency,
        "auto": to_auto,
    }
    return simple[kind]
