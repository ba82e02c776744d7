"""The two voices of a fix: AP's (what to correct in the ERP) and the mapping author's, for every
rule and stage; neither ever papers over missing data or a wrong document."""

from __future__ import annotations

import pytest

from pipeline.failures import RowFailure
from pipeline.mapping.checkspec import ChecksSpec
from pipeline.report.hints import _BY_RULE, _SCHEMA
from pipeline.report.voices import ASK_AUTHOR, ap_hint, author_hint
from tests.report.helpers import failure
from tests.report.test_hints import _engine_rules

PAPERING_OVER = ("default", "turn the check off", "level", ": off", "warning")
"""Words of a fix that hides the problem: a made-up value, a check switched off. (``others:`` of
a value map is not among them: it decides what an unknown code means, no value is missing.)"""
CHECK_RULES = [f"check:{name}" for name in ChecksSpec.model_fields]


def _every_failure() -> list[RowFailure]:
    """One failure of every rule the engine, the checks, the schema and AppZen produce, with
    and without the source column it came from."""
    rules = sorted({*_BY_RULE, *_engine_rules()})
    found = [
        failure(stage, rule, "m", field_path="supplier_id", source_column=column, value="v")
        for rule in rules
        for stage in ("mapping",)
        for column in ("lifnr", None)
    ]
    found += [failure("check", rule, "m", source_column="c", value="1") for rule in CHECK_RULES]
    found += [failure("validation", f"schema:{name}", "m", field_path="f") for name in _SCHEMA]
    found += [
        failure("appzen", f"appzen_{code}", "m", http_status=code) for code in (400, 401, 413, 422)
    ]
    found += [failure("extract", "unreadable", "m"), failure("retries_exhausted", "x", "m")]
    return found


@pytest.mark.parametrize("problem", _every_failure(), ids=lambda f: f"{f.stage}-{f.rule}")
def test_neither_voice_papers_over_missing_data_or_a_wrong_document(problem: RowFailure) -> None:
    ap, author = ap_hint(problem), author_hint(problem)
    assert ap, "AP always gets a sentence, if only 'nothing to correct: ask …'"
    for words in PAPERING_OVER:
        assert words not in ap.lower(), ap
        assert words not in (author or "").lower(), author


@pytest.mark.parametrize(
    ("problem", "ap", "author"),
    [
        (failure("mapping", "required", "blank", field_path="supplier_id", source_column="lifnr"),
         "lifnr is empty: fill it in", None),
        (failure("mapping", "required", "unmapped", field_path="supplier_id"),
         "correct the value the message names in the ERP, or ask the mapping author",
         "map a column to supplier_id"),
        (failure("validation", "schema:missing", "x", field_path="entity_id"),
         "nothing to correct in the document: the mapping sends no entity_id; ask its author",
         "map a source column to entity_id"),
        (failure("validation", "schema:string_too_short", "x", field_path="supplier_id"),
         "a value AppZen needs is empty: fill it in the ERP", None),
        (failure("mapping", "currency", "x", source_column="waers", value="EURO"),
         "waers (EURO) is not a currency code (ISO 4217, e.g. EUR): correct it",
         "EURO is not an ISO-4217 code: add a value map (`map:`) or fix the currency in the "
         "source"),
        (failure("check", "check:header_total", "x"),
         "the header total is not the sum of the lines (with tax and freight as the mapping "
         "says): correct the document's totals in the ERP",
         "only if the ERP's header total is right and holds tax or freight: say so with "
         "checks.header_total.includes: [tax, freight]"),
        (failure("check", "check:line_amount", "x"),
         "a line's quantity x unit price is not its amount: correct the line in the ERP", None),
        (failure("check", "check:supplier", "x", hint="add the supplier to the master"),
         "the invoice points at a supplier missing from the supplier master: add the supplier, "
         "or correct the invoice's supplier in the ERP", None),
        (failure("mapping", "key_collision", "x"),
         "two documents have keys that differ only by spaces, case or invisible characters: give "
         "each its own key in the ERP",
         "only if the two keys are one document: declare `key_normalisation:`"),
        (failure("mapping", "contiguity", "x"), ASK_AUTHOR,
         "list all rows of an invoice together: ORDER BY the invoice key"),
        (failure("extract", "unreadable", "x"), ASK_AUTHOR,
         "the source row could not be read: check the file or query at the location shown"),
        (failure("appzen", "appzen_401", "x", http_status=401),
         "nothing to correct in the document: AppZen refused the credentials (operations)", None),
        (failure("retries_exhausted", "retries_exhausted:ServerError", "x"),
         "nothing to do: AppZen did not answer in time; the next run sends it again", None),
    ],
)  # fmt: skip
def test_each_voice_says_its_part(problem: RowFailure, ap: str, author: str | None) -> None:
    assert ap_hint(problem) == ap
    assert author_hint(problem) == author


def test_an_old_stored_hint_loses_its_default_advice() -> None:
    stored = failure(
        "mapping", "date_format", "x", hint="fix the date, or give header.invoice_date a `default:`"
    )
    assert author_hint(stored) == "fix the date"
