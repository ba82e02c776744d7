"""Fix hints: the failure's own hint first, else one derived from its rule, status or stage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.report.hints import _BY_RULE, fix_hint
from tests.report.helpers import failure

MAPPING_DIR = Path(__file__).resolve().parents[2] / "pipeline" / "mapping"


def test_the_failures_own_hint_wins() -> None:
    own = failure("mapping", "currency", hint="translate XEU with map:", value="XEU")
    assert fix_hint(own) == "translate XEU with map:"


def test_a_blank_own_hint_is_ignored() -> None:
    assert "ISO-4217" in (fix_hint(failure("mapping", "currency", hint="  ", value="X")) or "")


@pytest.mark.parametrize(
    ("stage", "rule", "fields", "expected"),
    [
        ("mapping", "required", {"field_path": "supplier_id"},
         "map a column to supplier_id"),
        ("mapping", "required", {"field_path": "supplier_id", "source_column": "vendor"},
         "fill vendor in the source: supplier_id needs a value"),
        ("mapping", "date_format", {"value": "31-02-2021"},
         "date 31-02-2021 is not a date: set `format:`"),
        ("mapping", "datetime_format", {"value": "yesterday"},
         "date yesterday is not a date: set `format:`"),
        ("mapping", "currency", {"value": "EURO"}, "EURO is not an ISO-4217 code: add a value map"),
        ("mapping", "decimal", {"value": "12,5"}, "`decimal_separator:`"),
        ("mapping", "integer", {"value": "2.5"}, "2.5 is not a whole number"),
        ("mapping", "boolean", {"value": "J"}, "J is not yes/no"),
        ("mapping", "scale", {"field_path": "total_amount.amount"},
         "raise `scale:` of total_amount.amount"),
        ("mapping", "value_map", {"value": "ZZ", "field_path": "invoice_type"},
         "code ZZ is not in the value map: add it to the `map:` of invoice_type"),
        ("mapping", "text", {}, "cast the column to text"),
        ("mapping", "value", {}, "cast the column"),
        ("mapping", "join", {}, "ORDER BY the invoice key in both sources"),
        ("mapping", "contiguity", {}, "list all rows of an invoice together"),
        ("mapping", "key_collision", {}, "give each document its own key in the ERP"),
        ("mapping", "too_many_lines", {}, "max_lines_per_invoice"),
        ("mapping", "serialize", {}, "fix the source encoding"),
        ("mapping", "text_encoding", {"field_path": "supplier_name"},
         "supplier_name holds a broken character"),
        ("validation", "schema:missing", {"field_path": "entity_id"},
         "map a source column to entity_id"),
        ("validation", "schema:string_too_long", {"field_path": "invoice_number"},
         "invoice_number is too long for AppZen"),
        ("validation", "schema:literal_error", {"field_path": "invoice_type"}, "`map:`"),
        ("validation", "schema:decimal_max_places", {"field_path": "quantity"},
         "quantity breaks AppZen's schema (decimal_max_places)"),
        ("appzen", "appzen_400", {"http_status": 400},
         "fix the field AppZen names, then run `appzen-etl retry-failed`"),
        ("appzen", "appzen_409", {"http_status": 409}, "fix the field AppZen names"),
        ("appzen", "appzen_401", {"http_status": 401}, "check APPZEN_API_KEY"),
        ("appzen", "appzen_403", {}, "check APPZEN_API_KEY"),
        ("status_sync", "status_sync_401", {"http_status": 401}, "APPZEN_CUSTOMER_KEY"),
        ("appzen", "appzen_404", {"http_status": 404}, "check APPZEN_BASE_URL"),
        ("status_sync", "appzen_404_unknown_uuid", {"http_status": 404},
         "the next sync re-creates the invoice"),
        ("retries_exhausted", "retries_exhausted:QuotaExceeded", {"http_status": 429},
         "transient (AppZen quota, HTTP 429): the next run retries it"),
        ("retries_exhausted", "retries_exhausted:TransportError", {},
         "transient (no answer from AppZen)"),
        ("retries_exhausted", "retries_exhausted:ServerError", {"http_status": 503},
         "transient (AppZen server error"),
        ("retries_exhausted", "retries_exhausted:Whatever", {},
         "transient: the next run retries it"),
        ("status_sync", "status_sync_400", {"http_status": 400}, "check the ERP status columns"),
        ("status_sync", "status_sync_502", {"http_status": 502}, "transient"),
        ("extract", "unreadable", {}, "check the file or query at the location shown"),
    ],
)  # fmt: skip
def test_hint_by_rule(stage: str, rule: str, fields: dict[str, object], expected: str) -> None:
    hint = fix_hint(failure(stage, rule, **fields))  # type: ignore[arg-type]
    assert hint is not None
    assert expected in hint


def test_a_long_value_is_shortened_inside_the_hint() -> None:
    hint = fix_hint(failure("mapping", "currency", value="Q" * 500)) or ""
    assert len(hint) < 200
    assert "(500 chars)" in hint


def test_an_unknown_rule_of_an_unknown_stage_has_no_hint() -> None:
    assert fix_hint(failure("elsewhere", "mystery")) is None  # type: ignore[arg-type]


def _engine_rules() -> set[str]:
    patterns = (
        r'ConversionError\(\s*"(\w+)"',
        r'self\._failure\(\s*group,\s*"(\w+)"',
        r'rule="(\w+)"',
        r'"(\w+)" if orphan\.kind == "no_header" else "(\w+)"',
        r'_parsed\(value, formats, "(\w+)"\)',
    )
    found: set[str] = set()
    for path in MAPPING_DIR.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in patterns:
            for match in re.finditer(pattern, text):
                found.update(group for group in match.groups() if group)
    return found


def test_every_rule_the_mapping_engine_produces_has_a_hint() -> None:
    rules = _engine_rules()
    assert {"required", "date_format", "currency", "decimal", "value_map", "join"} <= rules
    missing = sorted(rules - set(_BY_RULE))
    assert not missing, f"add a hint for these mapping rules to pipeline/report/hints.py: {missing}"
