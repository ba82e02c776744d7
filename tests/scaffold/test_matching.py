"""The pieces of ``mapping init``: value profiles, column names, matching, template text."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from pipeline.scaffold import templates
from pipeline.scaffold.matching import Candidate, assign
from pipeline.scaffold.profile import profile, separators
from pipeline.scaffold.targets import HEADER, KEY, LINES, name_score, words


@pytest.mark.parametrize(
    ("values", "kind", "fmt"),
    [
        (
            ["04.09.2024", "18.11.2024", "01.02.2024", "30.12.2023", "31.02.2024"],
            "date",
            "%d.%m.%Y",
        ),
        (["20240315", "20240101", "20231231", "20240229"], "date", "%Y%m%d"),
        (["3/15/2024 12:00:00 AM", "12/1/2024 12:00:00 AM"], "date", "%m/%d/%Y %I:%M:%S %p"),
        (["2024-03-01 10:00:00.000000", "2024-03-02 11:30:00.000000"], "datetime", "iso"),
        ([date(2024, 1, 1), date(2024, 2, 1), None], "date", None),
        ([datetime(2024, 1, 1, 10, 5), datetime(2024, 1, 2)], "datetime", None),
        (["EUR", "CHF", "usd", "EUR"], "currency", None),
        (["1", "2", "17"], "integer", None),
        ([Decimal("1.50"), 2, 3.25], "number", None),
        (["V100002", "V100003"], "text", None),
        ([None, "", "  "], "empty", None),
    ],
)
def test_profiles_tell_what_values_are(values: list[object], kind: str, fmt: str | None) -> None:
    found = profile(values)
    assert (found.kind, found.date_format) == (kind, fmt)


def test_a_few_bad_values_do_not_hide_the_kind() -> None:
    good = [f"{day:02d}.03.2024" for day in range(1, 20)]
    assert profile([*good, "31.02.2024", "n/a"]).date_format == "%d.%m.%Y"
    assert profile(["n/a", "x", "31.02.2024"]).kind == "text"


def test_day_and_month_order_is_flagged_when_the_samples_allow_both() -> None:
    assert profile(["01/02/2024", "03/04/2024"]).ambiguous
    assert not profile(["01/02/2024", "13/04/2024"]).ambiguous  # 13 can only be a day


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["1.234,56", "201,22"], (",", ".")),
        (["1,234.56", "99.00"], (".", ",")),
        (["12,5", "3,75"], (",", "")),
        (["1234.50"], (".", "")),
        (["1'234.50"], (".", "'")),
    ],
)
def test_number_separators_are_read_from_the_samples(
    texts: list[str], expected: tuple[str, str]
) -> None:
    assert separators(texts) == expected
    assert profile(texts).kind == "number"


def test_names_compare_in_any_case_and_spelling() -> None:
    assert (
        words("InvoiceNum") == words("INVOICE_NUM") == words("invoice num.") == ("invoice", "num")
    )
    synonyms = ("invoice_number", "invoice_no")
    assert name_score("INVOICENUMBER", synonyms) > 0.9  # Dynamics' data-management spelling
    assert name_score("supplier_invoice_no", synonyms) == pytest.approx(0.798)
    assert name_score("invoice_items_barcode", ("invoice",)) == 0  # one word matches whole only
    assert name_score("remarks", synonyms) == 0


def _column(name: str, values: list[object], rows: str = "both", key: bool = False) -> Candidate:
    return Candidate(name, rows, profile(values), key)  # type: ignore[arg-type]


def test_required_fields_are_served_first_and_columns_are_not_shared() -> None:
    columns = [
        _column("invoice_no", ["A1", "A2"]),
        _column("description", ["Paper", "Toner"]),
        _column("amount", ["1.00", "2.00"]),
        _column("waers", ["EUR", "EUR"]),
        _column("supplier_no", ["V1", "V2"]),
    ]
    found = assign([KEY, *HEADER, *LINES], columns)
    chosen = {target: match.column.name for target, match in found.items()}
    assert chosen["invoice_lines.line_description"] == "description"  # not invoice_description
    assert "header.invoice_description" not in chosen
    assert chosen["header.total_amount.currency"] == "waers"
    assert found["header.total_amount.currency"].how == "name"
    # a column feeds one field, except the pairs allowed to share one
    assert chosen["header.supplier_id"] == chosen["header.supplier_number"] == "supplier_no"
    amount_users = [target for target, column in chosen.items() if column == "amount"]
    assert len(amount_users) == 1


def test_a_currency_column_is_found_by_its_codes_and_keys_by_the_primary_key() -> None:
    columns = [
        _column("doc_key", [1, 2], rows="header", key=True),
        _column("crcy_x", ["USD", "EUR", "JPY"], rows="header"),
        _column("qty", ["1", "2"], rows="lines"),
    ]
    found = assign([KEY, *HEADER, *LINES], columns)
    assert found["header.total_amount.currency"].how == "content"
    assert found["invoice_key"].column.name == "doc_key"
    assert "header.invoice_date" not in found  # the line column is not offered to the header


def test_templates_are_found_from_tables_and_columns() -> None:
    names = {t.name for t in templates.templates()}
    assert names == {"oracle_ebs", "sap_s4", "dynamics365", "dynamics365_byod",
                     "netsuite_saved_search", "netsuite_suiteql"}  # fmt: skip
    sap = templates.for_tables(["rbkp", "RSEG", "ekpo", "LFA1", "ADRC", "T001", "TCURX", "BSEG"])
    assert sap is not None
    assert sap.name == "sap_s4"
    assert templates.for_tables(["RBKP", "RSEG"]) is None  # every table the query reads
    assert templates.for_files([["id", "total"]]) is None


def test_template_text_is_rewritten_for_its_new_place() -> None:
    text = (
        "source:\n  kind: sql\n  query: x/extract.sql # the query\n"
        "header:\n  entity_id: { const: USMF } # mapping init asks: the legal entity\n"
    )
    moved = templates.with_value(text, "source", "query", "mappings/erp.sql")
    assert "  query: mappings/erp.sql\n" in moved
    asked, questions = templates.asked(moved)
    assert questions == ["entity_id: the legal entity"]
    assert "  # TODO(mapping init): the legal entity\n" in asked
    assert '  entity_id: "TODO(mapping init): the legal entity"\n' in asked
    query = "SELECT 1 FROM RBKP JOIN RSEG ON 1 = 1 LEFT JOIN lfa1 ON 1 = 1 -- FROM T001"
    assert templates.qualified(query, ["RBKP", "RSEG", "LFA1"], "sap") == (
        "SELECT 1 FROM sap.RBKP JOIN sap.RSEG ON 1 = 1 LEFT JOIN sap.lfa1 ON 1 = 1 -- FROM T001"
    )
    assert templates.tables_of(query) == ("RBKP", "RSEG", "lfa1")
