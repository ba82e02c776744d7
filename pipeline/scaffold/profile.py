"""What a column's sample values look like: dates (and their format), amounts (and their number
separators), currency codes, whole numbers, timestamps or plain text.

A profile decides from the values alone, tolerating a few bad ones (dirty rows are normal): a
kind holds when at least :data:`SHARE` of the non-blank samples fit it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pipeline.mapping.currencies import ISO_4217
from pipeline.mapping.transforms import is_blank

Kind = Literal["empty", "date", "datetime", "number", "integer", "currency", "boolean", "text"]
SHARE = 0.8
DATE_FORMATS = (
    "iso", "%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%Y%m%d", "%d-%m-%Y", "%Y/%m/%d",
    "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S",
)  # fmt: skip
"""Date formats tried on text, in order (``iso`` accepts a date-time too)."""
_DAY_FIRST = {"%d/%m/%Y": "%m/%d/%Y", "%d/%m/%Y %H:%M:%S": "%m/%d/%Y %H:%M:%S"}
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:[.,' ]\d{3})+|\d+)(?:[.,]\d+)?")
_WHOLE = re.compile(r"[+-]?\d+")
_BOOLEANS = frozenset({"true", "false", "yes", "no", "y", "n", "x", "1", "0"})


@dataclass(frozen=True)
class Profile:
    """The kind of a column's values; for text dates their format, for text numbers the
    separators; ``ambiguous`` says the day/month order could not be told from the samples."""

    kind: Kind
    date_format: str | None = None
    decimal_separator: str = "."
    thousands_separator: str = ""
    ambiguous: bool = False
    samples: int = 0

    @property
    def is_temporal(self) -> bool:
        """Dates or timestamps."""
        return self.kind in ("date", "datetime")

    @property
    def is_numeric(self) -> bool:
        """Numbers of any kind (whole numbers included)."""
        return self.kind in ("number", "integer")


def profile(values: Sequence[object]) -> Profile:
    """The profile of a column from its sample values (blanks ignored)."""
    present = [value for value in values if not is_blank(value)]
    if not present:
        return Profile("empty")
    native = _native(present)
    if native is not None:
        return Profile(native, samples=len(present))
    texts = [str(value).strip() for value in present]
    return _textual(texts)


def _native(values: list[object]) -> Kind | None:
    if _share(values, lambda v: isinstance(v, datetime)):
        clock = any(isinstance(v, datetime) and (v.hour or v.minute or v.second) for v in values)
        return "datetime" if clock else "date"
    if _share(values, lambda v: isinstance(v, date)):
        return "date"
    if _share(values, lambda v: isinstance(v, bool)):
        return "boolean"
    if _share(values, lambda v: isinstance(v, int) and not isinstance(v, bool)):
        return "integer"
    if _share(values, lambda v: isinstance(v, float | Decimal | int)):
        return "number"
    return None


def _share(values: Sequence[Any], test: Callable[[Any], object]) -> bool:
    fits = sum(1 for value in values if test(value))
    return fits >= SHARE * len(values)


def _textual(texts: list[str]) -> Profile:
    count = len(texts)
    if _share(texts, lambda t: len(t) == 3 and t.upper() in ISO_4217 and t.isalpha()):
        return Profile("currency", samples=count)
    fmt = date_format_of(texts)
    if fmt is not None:
        kind: Kind = "datetime" if _has_clock(texts, fmt) else "date"
        ambiguous = fmt in _DAY_FIRST or fmt in _DAY_FIRST.values()
        return Profile(kind, date_format=fmt, ambiguous=ambiguous and _both_orders(texts, fmt),
                       samples=count)  # fmt: skip
    if _share(texts, _WHOLE.fullmatch) and not _share(texts, lambda t: t.lower() in _BOOLEANS):
        return Profile("integer", samples=count)
    if _share(texts, _NUMBER.fullmatch):
        decimal, thousands = separators(texts)
        return Profile("number", decimal_separator=decimal, thousands_separator=thousands,
                       samples=count)  # fmt: skip
    if _share(texts, lambda t: t.lower() in _BOOLEANS):
        return Profile("boolean", samples=count)
    return Profile("text", samples=count)


def date_format_of(texts: Sequence[str]) -> str | None:
    """The first of :data:`DATE_FORMATS` most samples parse with (None: not dates)."""
    for fmt in DATE_FORMATS:
        if _share(texts, functools.partial(_parses, fmt=fmt)):
            return fmt
    return None


def _parses(text: str, fmt: str) -> bool:
    try:
        if fmt == "iso":
            if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
                return False
            datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
        else:
            datetime.strptime(text, fmt)
    except ValueError:
        return False
    return True


def _has_clock(texts: Sequence[str], fmt: str) -> bool:
    if fmt == "iso":
        return any(len(text) > 10 and not text.endswith(("00:00:00", "00:00")) for text in texts)
    return "%H" in fmt and any(" 00:00:00" not in text for text in texts)


def _both_orders(texts: Sequence[str], fmt: str) -> bool:
    other = _DAY_FIRST.get(fmt) or next(k for k, v in _DAY_FIRST.items() if v == fmt)
    return all(_parses(text, other) for text in texts if _parses(text, fmt))


def separators(texts: Sequence[str]) -> tuple[str, str]:
    """``(decimal, thousands)`` separators that read the number texts: ``(",", ".")`` for
    ``1.234,56``. A lone separator followed by three digits (``1,234``) gives no evidence."""
    votes = {".": 0, ",": 0}
    for text in texts:
        vote = _decimal_vote(text.lstrip("+-"))
        if vote:
            votes[vote] += 1
    decimal = "," if votes[","] > votes["."] else "."
    for thousands in ("." if decimal == "," else ",", "'", " ", "\u00a0"):
        if any(thousands in text for text in texts):
            return decimal, thousands
    return decimal, ""


def _decimal_vote(digits: str) -> str | None:
    marks = [char for char in digits if char in ".,"]
    if not marks:
        return None
    if len(set(marks)) == 2:
        return marks[-1]  # 1.234,56 or 1,234.56: the last one is the decimal separator
    if len(marks) > 1:
        return "," if marks[0] == "." else "."  # 1.234.567: a thousands separator
    decimals = len(digits) - digits.rfind(marks[0]) - 1
    return None if decimals == 3 else marks[0]
