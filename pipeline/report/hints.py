"""Fix hints: what the ops person should do about a failed row, by rule and stage.

A failure's own hint wins (the stage that raised it knew most); otherwise the hint is derived from
the rule the mapping engine, the schema validation, the poster or status-sync produced, then from
the HTTP status, then from the stage. Rules covered: ``required``, ``date_format``,
``datetime_format``, ``currency``, ``decimal``, ``integer``, ``boolean``, ``scale``, ``range``,
``value_map``, ``text``, ``value``, ``join``, ``contiguity``, ``key_collision``,
``too_many_lines``, ``serialize``, ``text_encoding``, ``schema:<pydantic type>``,
``appzen_<status>``, ``appzen_404_unknown_uuid``, ``retries_exhausted:<error>``,
``status_sync_<status>``. ``tests/report/test_hints.py`` fails when
the mapping engine gains a rule this table does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from pipeline.failures import RowFailure, shorten

_SHOWN_CHARS: Final = 60
RETRY = "`appzen-etl retry-failed`"
CREDENTIALS = (
    "AppZen refused the credentials: check APPZEN_API_KEY, APPZEN_CUSTOMER_ID and "
    "APPZEN_CUSTOMER_KEY, then run " + RETRY
)


def _value(failure: RowFailure) -> str:
    return shorten(failure.value, _SHOWN_CHARS) or "the value"


def _field(failure: RowFailure) -> str:
    return failure.field_path or "the field"


def _required(failure: RowFailure) -> str:
    field = _field(failure)
    if failure.source_column:
        return f"fill {failure.source_column} in the source: {field} needs a value"
    return f"map a column to {field}"


def _date(failure: RowFailure) -> str:
    return (
        f"date {_value(failure)} is not a date: set `format:` (strptime, e.g. '%d.%m.%Y') "
        "or fix the source"
    )


_BY_RULE: Final[dict[str, Callable[[RowFailure], str]]] = {
    "required": _required,
    "date_format": _date,
    "datetime_format": _date,
    "currency": lambda f: (
        f"{_value(f)} is not an ISO-4217 code: add a value map (`map:`) "
        "or fix the currency in the source"
    ),
    "decimal": lambda f: (
        f"{_value(f)} is not a number: fix the source, or set "
        "`decimal_separator:` / `thousands_separator:`"
    ),
    "integer": lambda f: f"{_value(f)} is not a whole number: fix the source value",
    "boolean": lambda f: (
        f"{_value(f)} is not yes/no: map the source codes with `map:` (e.g. {{J: true, N: false}})"
    ),
    "scale": lambda f: (
        f"too many decimal places: round the value in the source, or raise `scale:` of {_field(f)}"
    ),
    "range": lambda f: (
        f"{_value(f)} is below the `min:` of {_field(f)}: fix the source value (a credit note "
        "sent as an invoice?), or lower `min:`"
    ),
    "value_map": lambda f: (
        f"code {_value(f)} is not in the value map: add it to the `map:` of "
        f"{_field(f)}, or set `others:`"
    ),
    "text": lambda f: (
        "the value is not text (binary or not-a-number): cast the column to text in the query"
    ),
    "value": lambda f: (
        f"{_value(f)} cannot be read as the type of {_field(f)}: fix the source, or cast the "
        "column in the query"
    ),
    "join": lambda f: "ORDER BY the invoice key in both sources, with the same collation",
    "contiguity": lambda f: "list all rows of an invoice together: ORDER BY the invoice key",
    "key_collision": lambda f: (
        "give each document its own key in the ERP; if the two are one document, declare "
        "`key_normalisation:` in the mapping"
    ),
    "too_many_lines": lambda f: "raise max_lines_per_invoice in the mapping if the invoice is real",
    "serialize": lambda f: (
        "the source text holds characters JSON cannot carry (a lone "
        "surrogate?): fix the source encoding"
    ),
    "text_encoding": lambda f: (
        f"{_field(f)} holds a broken character (lone surrogate): fix the text in the source, "
        "or read the file with its real `encoding:`"
    ),
    "appzen_400": lambda f: f"fix the field AppZen names, then run {RETRY}",
    "appzen_422": lambda f: f"fix the field AppZen names, then run {RETRY}",
    "appzen_404": lambda f: "check APPZEN_BASE_URL (it ends in /dictionary-data-services)",
    "appzen_404_unknown_uuid": lambda f: (
        "AppZen does not know this uuid: the next sync re-creates the invoice"
    ),
    "appzen_413": lambda f: (
        "the invoice is too large for AppZen: split its lines or drop "
        f"`extra:` fields, then run {RETRY}"
    ),
    "status_sync_400": lambda f: (
        "AppZen refused the status body: check the ERP status columns of the mapping (`status:`)"
    ),
}

_SCHEMA: Final[dict[str, str]] = {
    "missing": "map a source column to {field}",
    "string_too_long": "{field} is too long for AppZen: shorten it (a transform such as `last4`, "
    "or fix the source)",
    "string_too_short": "{field} is empty: fill it in the source",
    "literal_error": "{field} must be one of AppZen's values: translate the source codes with "
    "`map:`",
    "enum": "{field} must be one of AppZen's values: translate the source codes with `map:`",
    "extra_forbidden": "{field} is not an AppZen field: move it under `extra:` or remove it",
    "string_pattern_mismatch": "{field} does not have the form AppZen expects: fix the source "
    "or add a transform",
}

_RETRIES: Final[dict[str, str]] = {
    "QuotaExceeded": "transient (AppZen quota, HTTP 429): the next run retries it; lower "
    "APPZEN_RATE_LIMIT if it keeps happening",
    "TransportError": "transient (no answer from AppZen): the next run retries it; check the "
    "network to AppZen if it persists",
    "ServerError": "transient (AppZen server error, HTTP 5xx): the next run retries it",
}

_BY_STAGE: Final[dict[str, str]] = {
    "extract": "the source row could not be read: check the file or query at the location shown",
    "mapping": "fix the source value, or the field's rule in the mapping file",
    "validation": "the mapped invoice breaks AppZen's schema: check the mapping of the field",
    "check": "fix the document in the ERP: the check found it wrong",
    "warning": "sent: look at the document in the ERP before it is paid",
    "appzen": f"fix what AppZen's message names, then run {RETRY}",
    "retries_exhausted": "transient: the next run retries it",
    "status_sync": "status-sync retries it on the next run; check the ERP status columns",
}


def fix_hint(failure: RowFailure) -> str | None:
    """The failure's own hint if it has one, else one derived from its rule, HTTP status or
    stage; ``None`` when nothing useful is known."""
    if failure.hint and failure.hint.strip():
        return failure.hint
    return _from_rule(failure) or _from_status(failure) or _BY_STAGE.get(failure.stage)


def _from_rule(failure: RowFailure) -> str | None:
    rule = failure.rule
    known = _BY_RULE.get(rule)
    if known is not None:
        return known(failure)
    head, _, detail = rule.partition(":")
    if head == "schema":
        template = _SCHEMA.get(detail)
        if template is None:
            return f"{_field(failure)} breaks AppZen's schema ({detail}): check its mapping"
        return template.format(field=_field(failure))
    if head == "retries_exhausted":
        return _RETRIES.get(detail, _BY_STAGE["retries_exhausted"])
    return None


def _status(failure: RowFailure) -> int | None:
    if failure.http_status is not None:
        return failure.http_status
    digits = failure.rule.rpartition("_")[2]
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) == 3 else None


def _from_status(failure: RowFailure) -> str | None:
    status = _status(failure)
    if status in (401, 403):
        return CREDENTIALS
    if status == 429 or (status is not None and status >= 500):
        return "transient: the next run retries it"
    if status is not None and 400 <= status < 500 and failure.stage == "appzen":
        return f"fix the field AppZen names, then run {RETRY}"
    return None
