"""The two voices of a fix: what accounts payable fixes in the ERP, what the mapping's author
changes in the mapping. Neither papers over missing data: a value that is not in the ERP is
never answered with a made-up ``default:``, and a check that found a wrong document is never
answered with turning the check off.

The AP voice speaks of documents, columns and values in the ERP; where nothing in the document
is wrong (the mapping cannot read it), it says so and names who can fix it. The author voice is
``None`` when the mapping is right and only the data must change.
"""

from __future__ import annotations

import re
from typing import Final

from pipeline.failures import RowFailure, shorten
from pipeline.report.hints import fix_hint

_SHOWN: Final = 60
RETRY: Final = "`appzen-etl retry-failed` resends it"
ASK_AUTHOR: Final = "nothing to correct in the document: the mapping cannot read it; ask its author"

APPZEN_AUTHOR: Final = (
    "only if the field AppZen names is filled by the mapping (a `const:`, a `map:`, a "
    "transform) rather than read from the ERP: correct it there"
)

_AP_BY_RULE: Final[dict[str, str]] = {
    "required": "is empty: fill it in",
    "date_format": "is not a valid date: correct it",
    "datetime_format": "is not a valid date and time: correct it",
    "currency": "is not a currency code (ISO 4217, e.g. EUR): correct it",
    "decimal": "is not a number: correct it",
    "integer": "is not a whole number: correct it",
    "boolean": "is not a yes/no code: correct it",
    "range": "is out of range (a credit note entered as an invoice?): correct it",
    "scale": "has too many decimal places: round it",
    "value_map": "is a code the mapping does not know: use a known code, or ask the mapping author",
    "text_encoding": "holds a broken character: retype it",
}
"""A value of one ERP column is wrong: ``<column> (<value>) <what>``."""

_AP_DOCUMENT: Final[dict[str, str]] = {
    "check:header_total": "the header total is not the sum of the lines (with tax and freight "
    "as the mapping says): correct the document's totals in the ERP",
    "check:line_amount": "a line's quantity x unit price is not its amount: correct the line "
    "in the ERP",
    "check:one_currency": "the document mixes currencies: give it one currency in the ERP",
    "check:minor_units": "an amount has more decimals than its currency allows: round it in the "
    "ERP, or correct the currency code",
    "check:sign": "the amounts' signs do not fit the document type (a credit note entered as an "
    "invoice?): correct the document type or the amounts in the ERP",
    "check:invoice_date": "the invoice date is implausible (a typo in the year?): correct it in "
    "the ERP",
    "check:duplicate_number": "this supplier invoice number is already there: check for a "
    "duplicate payment before anything else",
    "check:supplier": "the invoice points at a supplier missing from the supplier master: add "
    "the supplier, or correct the invoice's supplier in the ERP",
    "key_collision": "two documents have keys that differ only by spaces, case or invisible "
    "characters: give each its own key in the ERP",
    "schema:string_too_short": "a value AppZen needs is empty: fill it in the ERP",
    "schema:string_too_long": "a value is longer than AppZen accepts: shorten it in the ERP",
}
"""Whole-document problems AP corrects in the ERP, by rule."""

_AUTHOR_BY_RULE: Final[dict[str, str | None]] = {
    "check:header_total": "only if the ERP's header total is right and holds tax or freight: "
    "say so with checks.header_total.includes: [tax, freight]",
    "check:one_currency": "only if the ERP keeps the currency per line and the lines agree: "
    "map the header currency from one column",
    "check:sign": "only if invoice_type is mapped wrongly: map the document's real type (a "
    "return is a CREDIT_NOTE)",
    "check:line_amount": None,
    "check:minor_units": None,
    "check:invoice_date": None,
    "check:duplicate_number": None,
    "check:supplier": None,
    "key_collision": "only if the two keys are one document: declare `key_normalisation:`",
    "schema:string_too_short": None,
}
"""The author's part where the generic hint would speak to AP or suggest switching a check off
(``None``: nothing to change in the mapping)."""

_MAPPING_ONLY: Final = frozenset({"join", "contiguity", "too_many_lines", "text", "value"})


def ap_hint(failure: RowFailure) -> str:
    """What to fix in the ERP, for accounts payable (never a workaround in the mapping)."""
    whole = _ap_document(failure)
    if whole is not None:
        return whole
    what = _AP_BY_RULE.get(failure.rule)
    column = failure.source_column
    if what is None or column is None:
        return "correct the value the message names in the ERP, or ask the mapping author"
    value = f" ({shorten(failure.value, _SHOWN)})" if failure.value else ""
    return f"{column}{value} {what}"


def _ap_document(failure: RowFailure) -> str | None:
    """AP's part when it is about the whole document (or nothing in it), not one value."""
    rule, stage = failure.rule, failure.stage
    if stage == "appzen":
        return _ap_appzen(failure)
    if stage == "retries_exhausted":
        return "nothing to do: AppZen did not answer in time; the next run sends it again"
    if stage == "extract" or rule in _MAPPING_ONLY:
        return ASK_AUTHOR
    if rule == "schema:missing":
        field = failure.field_path or "the field"
        return f"nothing to correct in the document: the mapping sends no {field}; ask its author"
    return _AP_DOCUMENT.get(rule)


def _ap_appzen(failure: RowFailure) -> str:
    status = failure.http_status
    if status in (401, 403) or failure.rule in {"appzen_401", "appzen_403"}:
        return "nothing to correct in the document: AppZen refused the credentials (operations)"
    if failure.rule == "appzen_413" or status == 413:
        return "the document is too large for AppZen (lines, long texts): ask the mapping author"
    if failure.rule == "appzen_404_unknown_uuid":
        return "nothing to do: the next sync sends the invoice again"
    return (
        "correct in the ERP what AppZen's message names (or the supplier in AppZen's master "
        f"data); {RETRY}"
    )


def author_hint(failure: RowFailure) -> str | None:
    """What to change in the mapping, for its author; ``None`` when the mapping is right and
    the data must be fixed (a value that is missing is never given a made-up default)."""
    if failure.stage == "appzen":
        refused = failure.http_status in (400, 422) or failure.rule in {"appzen_400", "appzen_422"}
        return APPZEN_AUTHOR if refused else None
    if failure.stage == "retries_exhausted":
        return None
    if failure.rule == "required" and failure.source_column:
        return None  # the column is mapped; the ERP row has no value: AP fills it in
    if failure.rule in _AUTHOR_BY_RULE:
        return _AUTHOR_BY_RULE[failure.rule]
    hint = fix_hint(failure)
    return None if hint is None else _DEFAULT_ADVICE.sub("", hint)


_DEFAULT_ADVICE: Final = re.compile(r",?\s*\(?\bor (?:set|give)\b[^;)]*\bdefault\b[^;)]*\)?")
"""The "… or give it a `default:`" tail of a hint stored by an earlier version: a made-up value
is no fix for missing data."""
