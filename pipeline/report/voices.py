"""The two voices of a fix: what accounts payable fixes in the ERP, what the mapping's author
changes in the mapping. Neither papers over missing data: a value that is not in the ERP is
never answered with a made-up ``default:``."""

from __future__ import annotations

import re
from typing import Final

from pipeline.failures import RowFailure, shorten
from pipeline.report.hints import fix_hint

_SHOWN: Final = 60

_AP_BY_RULE: Final[dict[str, str]] = {
    "required": "is empty: fill it in",
    "date_format": "is not a valid date: correct it",
    "datetime_format": "is not a valid date and time: correct it",
    "currency": "is not a currency code (ISO 4217, e.g. EUR): correct it",
    "decimal": "is not a number: correct it",
    "integer": "is not a whole number: correct it",
    "range": "is out of range (a credit note entered as an invoice?): correct it",
    "scale": "has too many decimal places: round it",
    "value_map": "is a code the mapping does not know: use a known code, or ask the mapping author",
    "text_encoding": "holds a broken character: retype it",
}


def ap_hint(failure: RowFailure) -> str:
    """What to fix in the ERP, for accounts payable (never a workaround in the mapping)."""
    if failure.stage == "appzen":
        return (
            f"AppZen refused the invoice: {shorten(failure.message, 160)}. Correct what it names "
            "in the ERP (or in AppZen's master data, e.g. the supplier); it is resent by "
            "`appzen-etl retry-failed`"
        )
    if failure.stage == "retries_exhausted":
        return "nothing to do: AppZen did not answer in time; the next run sends it again"
    if failure.stage == "extract":
        return "the source row could not be read: ask the mapping author (see the location)"
    what = _AP_BY_RULE.get(failure.rule)
    column = failure.source_column
    if what is None or column is None:
        return "correct the value the message names in the ERP, or ask the mapping author"
    value = f" ({shorten(failure.value, _SHOWN)})" if failure.value else ""
    return f"in the ERP, {column}{value} {what}"


def author_hint(failure: RowFailure) -> str | None:
    """What to change in the mapping, for its author; ``None`` when the mapping is right and
    the data must be fixed (a value that is missing is never given a made-up default)."""
    if failure.stage in {"appzen", "retries_exhausted"}:
        return None
    if failure.rule == "required" and failure.source_column:
        return None  # the column is mapped; the ERP row has no value: AP fills it in
    hint = fix_hint(failure)
    return None if hint is None else _DEFAULT_ADVICE.sub("", hint)


_DEFAULT_ADVICE: Final = re.compile(r",?\s*\(?\bor (?:set|give)\b[^;)]*\bdefault\b[^;)]*\)?")
"""The "… or set a `default:`" tail of a hint: a made-up value is no fix for missing data."""
