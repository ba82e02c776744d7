"""``document_url:``: checked at load (http(s) only, host written out, known bare placeholders),
and each invoice's link built with every value URL-escaped."""

from __future__ import annotations

import pytest

from pipeline.failures import InvoiceFacts
from pipeline.mapping.links import PLACEHOLDERS, check_document_url, document_link
from pipeline.mapping.loader import MappingFileError
from tests.mapping.conftest import MINIMAL, Load

FACTS = InvoiceFacts("AC/2025 #1", "V100", "Acme & Co", "2025-02-10", "1250.00", "EUR")


def test_a_mapping_names_its_document_url(load: Load) -> None:
    spec = load(
        MINIMAL + 'document_url: "https://erp.example/ap/{invoice_id}?n={invoice_number}"\n'
    )
    assert spec.document_url == "https://erp.example/ap/{invoice_id}?n={invoice_number}"
    assert load(MINIMAL).document_url is None  # optional: no links


def test_every_value_is_url_escaped_as_one_component() -> None:
    template = "https://erp.example/ap/{invoice_id}?n={invoice_number}&s={supplier_name}"
    link = document_link(template, "51/00?x#y", FACTS)
    assert link == "https://erp.example/ap/51%2F00%3Fx%23y?n=AC%2F2025%20%231&s=Acme%20%26%20Co"


def test_no_link_when_a_value_it_needs_is_unknown() -> None:
    assert document_link("https://erp.example/s/{supplier_id}", "K1", InvoiceFacts()) is None
    assert document_link("https://erp.example/k/{invoice_id}", "K1", InvoiceFacts()) == (
        "https://erp.example/k/K1"
    )


def test_the_placeholders_are_the_key_and_the_ledgers_facts() -> None:
    assert PLACEHOLDERS == (
        "invoice_id", "invoice_number", "supplier_id", "supplier_name", "invoice_date",
        "total_amount", "currency",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("ftp://erp.example/{invoice_id}", "scheme 'ftp:' is not allowed: a document_url is an "
         "absolute http:// or https:// URL"),
        ("javascript:alert(1)//{invoice_id}", "scheme 'javascript:' is not allowed"),
        ("data:text/html,{invoice_id}", "scheme 'data:' is not allowed"),
        ("erp.example/ap/{invoice_id}", "no scheme: a document_url is an absolute http://"),
        ("https://erp.example/{invoice_no}", "unknown placeholder {invoice_no}: did you mean "
         "{invoice_number}? the known ones are {invoice_id}, {invoice_number}"),
        ("https://erp.example/{vendor}", "unknown placeholder {vendor}: the known ones are"),
        ("https://{supplier_id}.erp.example/x", "placeholders go in the path, query or fragment, "
         "never in the host"),
        ("https://erp.example{invoice_id}", "never in the host"),
        ("https://erp.example/{invoice_id.__class__}", "placeholder {invoice_id.__class__} is "
         "not a plain name"),
        ("https://erp.example/{invoice_id!r}", "placeholder {invoice_id!r} is not a plain name"),
        ("https://erp.example/{invoice_id:>20}", "placeholder {invoice_id:>20} is not a plain"),
        ("https://erp.example/{0}", "placeholder {0} is not a plain name"),
        ("https://erp.example/{invoice_id", "expected '}' before end of string (write a literal "
         "brace as {{ or }})"),
        ("https://erp.example/ap", "no placeholder: every invoice would link to the same page"),
        ("https://me:secret@erp.example/{invoice_id}", "carries no user or password"),
        ("https://erp.example/a b/{invoice_id}", "holds no spaces or control characters"),
    ],
)  # fmt: skip
def test_a_bad_document_url_is_refused_naming_why(template: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_document_url(template)
    assert message in str(caught.value)


def test_a_bad_document_url_names_its_file_and_line(load: Load) -> None:
    with pytest.raises(MappingFileError) as caught:
        load(MINIMAL + 'document_url: "ftp://erp.example/{invoice_id}"\n')
    assert "m.yaml:15 document_url: scheme 'ftp:' is not allowed" in str(caught.value)
