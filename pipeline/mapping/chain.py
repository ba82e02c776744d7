"""Composing one field's conversion: formats per field, transforms, value maps, scale, minimum."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from typing import Final

from pipeline.failures import shorten
from pipeline.mapping.layout import NOTHING
from pipeline.mapping.leaves import OthersValue, ValueSpec, template_parts
from pipeline.mapping.transforms import ConversionError, Converter, Formats, LeafType, to_text

WIDE: Final = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
"""Exact arithmetic for products and sums of amounts (18 integer digits, 12 places and more)."""
OTHERS: Final = "\x00others"
_ROUNDING: Final = Context(prec=60)


def scaled(convert: Converter, places: int) -> Converter:
    quantum = Decimal(1).scaleb(-places)

    def scaled(value: object) -> object:
        number = convert(value)
        if not isinstance(number, Decimal):
            return number
        fixed = number.quantize(quantum, context=_ROUNDING)
        if fixed != number:
            raise ConversionError(
                "scale",
                f"{number} has more than {places} decimal places",
                "round the value in the source, or raise `scale:`",
            )
        return fixed

    return scaled


def at_least(convert: Converter, minimum: Decimal) -> Converter:
    """``convert``, then a failure (rule ``range``) for a decimal below ``minimum``."""

    def bounded(value: object) -> object:
        number = convert(value)
        if isinstance(number, Decimal) and number < minimum:
            raise ConversionError(
                "range",
                f"{number} is below the minimum {minimum}",
                "fix the source value (a credit note sent as an invoice?), or lower `min:`",
            )
        return number

    return bounded


def chained(steps: list[Callable[[str], str]], last: Converter) -> Converter:
    def chained(value: object) -> object:
        text = to_text(value)
        for step in steps:
            text = step(text)
        return last(text)

    return chained


def mapped(table: dict[str, object], others: object, fallback: Converter, where: str) -> Converter:
    codes = ", ".join(list(table)[:8]) + (" …" if len(table) > 8 else "")

    def lookup(value: object) -> object:
        text = to_text(value)
        found = table.get(text, NOTHING)
        if found is not NOTHING:
            return found
        if others == "keep":
            return fallback(value)
        if others == "omit":
            return None
        if isinstance(others, OthersValue):
            return table[OTHERS]
        raise ConversionError(
            "value_map",
            f"code {shorten(text)} is not in the value map ({codes})",
            f"add {shorten(text)} to {where}.map, or set `others:` (keep, omit or {{value: …}})",
        )

    return lookup


def field_formats(spec: ValueSpec, formats: Formats) -> Formats:
    if spec.decimal_separator is not None or spec.thousands_separator is not None:
        formats = replace(
            formats,
            decimal_separator=spec.decimal_separator or formats.decimal_separator,
            thousands_separator=(
                formats.thousands_separator
                if spec.thousands_separator is None
                else spec.thousands_separator
            ),
        )
    if spec.formats:
        formats = replace(formats, date_formats=spec.formats, datetime_formats=spec.formats)
    return formats


def conversion_key(spec: ValueSpec, kind: LeafType, formats: Formats) -> Hashable:
    """Equal keys convert a column alike (the slot is shared)."""
    others = spec.others if isinstance(spec.others, str) else ("value", repr(spec.others.value))
    return (
        kind,
        field_formats(spec, formats),
        spec.scale,
        spec.min,
        tuple((code, repr(value)) for code, value in (spec.map or {}).items())
        if spec.map
        else None,
        others if spec.map else None,
        tuple(spec.transforms),
    )


def source_label(spec: ValueSpec) -> tuple[str, str]:
    """The source columns of a value (comma separated) and how messages name them."""
    if spec.column is not None:
        return spec.column, f"column {spec.column}"
    if spec.multiply is not None:
        return ",".join(spec.multiply), f"columns {' * '.join(spec.multiply)}"
    if spec.sum_lines is not None:
        return "", f"the lines' {spec.sum_lines}"
    parts = [column for _, column in template_parts(spec.template or "") if column]
    return ",".join(parts), f"template {spec.template!r}"
