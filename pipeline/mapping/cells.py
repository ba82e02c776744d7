"""Whole-column conversion: a chunk's column of source values → converted values or marks.

A column is converted once per chunk for every distinct conversion the mapping applies to it (three
``currency`` fields reading one column share one conversion). Blank cells become :data:`BLANK`, a
value that does not convert a :class:`Mark` carrying the error; the field that reads the cell
decides what a mark means (default, omit, or a RowFailure).

Fast paths run at C speed where the values allow it: a column of ``Decimal`` (SQL, JSON) for a plain
decimal field passes through after a finiteness and range check; a text column for a plain string
field is stripped with ``map``; any all-text (or all-date) column is converted once per distinct
value and expanded with a dict lookup (codes, currencies and dates repeat on every line).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from pipeline.mapping.transforms import (
    MAX_INT,
    MAX_INTEGER_DIGITS,
    ConversionError,
    Converter,
    is_blank,
)

_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_EXACT_KEYS = frozenset({str, int, bool, date, datetime})
_TEXT_OR_NULL = frozenset({str, type(None)})
_BLANK_RAISES = frozenset({"decimal", "integer", "date", "datetime", "currency"})
"""Leaf types whose converter raises on blank text ("", spaces): see :func:`_optimistic`."""


class Mark:
    """A cell that gives no value: blank, left out by a value map, or failed (``error``)."""

    __slots__ = ("error", "kind", "raw")

    def __init__(self, kind: str, raw: object = None, error: ConversionError | None = None) -> None:
        self.kind = kind  # "blank" | "unmapped" | "failed"
        self.raw = raw
        self.error = error

    def __repr__(self) -> str:
        return f"Mark({self.kind}, {self.raw!r})"


BLANK: Final = Mark("blank")

CellConverter = Callable[[object], object]
ColumnConverter = Callable[[list[object]], list[object]]


def cell_converter(convert: Converter) -> CellConverter:
    """One cell → its value, or a :class:`Mark` (never raises)."""

    def cell(value: object) -> object:
        if is_blank(value):
            return BLANK
        try:
            out = convert(value)
        except ConversionError as error:
            return Mark("failed", value, error)
        except (ValueError, TypeError, ArithmeticError) as error:
            return Mark("failed", value, ConversionError("value", f"cannot be read: {error}"))
        return Mark("unmapped", value) if out is None else out

    return cell


def column_converter(convert: Converter, plain: str | None) -> ColumnConverter:
    """A converter of whole columns; ``plain`` names the leaf type when no transform, map or
    scale applies (enabling the pass-through fast paths)."""
    cell = cell_converter(convert)

    def column(values: list[object]) -> list[object]:
        kinds = set(map(type, values))
        if len(kinds) == 1:
            kind = kinds.pop()
            fast = _fast(plain, kind, values)
            if fast is not None:
                return fast
            if kind in _EXACT_KEYS:  # equal values of these types convert alike (not 1.0 / 1.00)
                distinct = set(values)
                if len(distinct) * 2 <= len(values):
                    table = {value: cell(value) for value in distinct}
                    return list(map(table.__getitem__, values))
        elif plain == "string" and kinds == _TEXT_OR_NULL:
            return [BLANK if value is None else value.strip() or BLANK for value in values]  # type: ignore[attr-defined]
        if plain in _BLANK_RAISES and kinds <= _TEXT_OR_NULL:
            converted = _optimistic(convert, values)
            if converted is not None:
                return converted
        return list(map(cell, values))

    return column


def _optimistic(convert: Converter, values: list[object]) -> list[object] | None:
    """Every cell converted without the per-cell wrapper (``None`` → :data:`BLANK`), or ``None``
    as soon as one cell fails: the caller then converts cell by cell, which marks the failures.
    Only for converters that raise on every blank text (so no blank can pass as a value)."""
    try:
        out = [BLANK if value is None else convert(value) for value in values]
    except (ConversionError, ValueError, TypeError, ArithmeticError):
        return None
    return None if None in out else out


def _fast(plain: str | None, kind: type, values: list[object]) -> list[object] | None:
    if plain == "decimal" and kind is Decimal:
        numbers: list[Decimal] = values  # type: ignore[assignment]
        if (
            all(map(Decimal.is_finite, numbers))
            and min(numbers) > -_LIMIT
            and max(numbers) < _LIMIT
        ):
            return values
    if plain == "integer" and kind is int and -MAX_INT <= min(values) <= max(values) <= MAX_INT:  # type: ignore[type-var,operator]
        return values
    if plain == "string" and kind is str:
        stripped: list[object] = list(map(str.strip, values))  # type: ignore[arg-type]
        if "" in stripped:
            return [BLANK if text == "" else text for text in stripped]
        return stripped
    return None
