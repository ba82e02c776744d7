"""The HTML report: self-contained, strict CSP, grouped by stage and rule, every value escaped."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from pipeline import redact
from pipeline.report import write_reports
from pipeline.report.htmlreport import CSP, MAX_ROWS_PER_RULE, csp
from pipeline.report.worklist import script
from pipeline.staging.records import StoredFailure
from tests.report.helpers import (
    ATTR_PAYLOAD,
    ELEMENT_PAYLOAD,
    IMG_PAYLOAD,
    SVG_PAYLOAD,
    TITLE_PAYLOAD,
    Page,
    failure,
    make_run,
    one_per_stage,
    stored,
)
from tests.report.worklist_data import write_worklist

ALLOWED_TAGS = {
    "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "dl",
    "dt", "dd", "span", "section", "table", "tr", "th", "td", "a", "code", "p", "article",
    "strong", "ul", "li", "br", "thead", "tbody", "div", "label", "input", "select", "option",
    "output",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "lang", "charset", "http-equiv", "content", "name", "class", "id", "href", "colspan",
    "hidden", "type", "placeholder", "autocomplete", "value", "checked", "data-group",
    "data-key", "data-number", "data-supplier", "data-amount", "data-currency", "data-date",
    "data-age", "rel", "target",
}  # fmt: skip


def _page(tmp_path: Path, failures_: Sequence[StoredFailure], **run: object) -> tuple[str, Page]:
    paths = write_reports(make_run(**run), failures_, tmp_path)  # type: ignore[arg-type]
    assert paths.html == tmp_path / "run-42-failures.html"
    text = paths.html.read_text(encoding="utf-8")
    return text, Page(text)


def _hostile() -> list[StoredFailure]:
    payloads = [TITLE_PAYLOAD, ELEMENT_PAYLOAD, IMG_PAYLOAD, ATTR_PAYLOAD, SVG_PAYLOAD]
    return [
        stored(
            failure(
                "appzen",
                f"appzen_400{payload}",
                payload,
                source_key=payload,
                source_location=payload,
                field_path=payload,
                source_column=payload,
                value=payload,
                hint=payload,
                error_code=payload,
                correlation_id=payload,
            )
        )
        for payload in payloads
    ]


def test_self_contained_with_a_strict_csp_and_only_its_own_script(tmp_path: Path) -> None:
    text, page = _page(tmp_path, one_per_stage())
    assert text.startswith("<!DOCTYPE html>")
    metas = [attrs for tag, attrs in page.tags if tag == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    assert page.names() <= ALLOWED_TAGS | {"script"}
    assert not {"link", "img", "iframe", "object", "embed", "form"} & page.names()
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{}]  # one inline script, no src
    hrefs = [attrs["href"] for tag, attrs in page.tags if tag == "a"]
    assert all(h and (h.startswith("#") or h == "run-42-failures.csv") for h in hrefs)
    for external in ("http://", "https://", "url(", "@import"):
        assert external not in text


def _inline_scripts(text: str) -> list[str]:
    return re.findall(r"<script>(.*?)</script>", text, flags=re.DOTALL)


def test_the_csp_allows_the_inline_script_by_its_hash_and_nothing_else(tmp_path: Path) -> None:
    text, _ = _page(tmp_path, one_per_stage())
    (inline,) = _inline_scripts(text)
    digest = base64.b64encode(hashlib.sha256(inline.encode("utf-8")).digest()).decode()
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives == {
        "default-src": "'none'",
        "style-src": "'unsafe-inline'",
        "script-src": f"'sha256-{digest}'",
        "base-uri": "'none'",
        "form-action": "'none'",
    }  # no 'unsafe-inline' or 'unsafe-eval' for scripts, no host, no 'self'
    assert csp(inline) == CSP
    assert csp(inline + " ") != CSP  # one changed character and the hash no longer matches
    for forbidden in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML"):
        assert forbidden not in inline
    assert not re.search(r"\son[a-z]+=", text)  # no inline event handler anywhere


def test_a_page_without_invoices_allows_no_script(tmp_path: Path) -> None:
    text, page = _page(tmp_path, [])
    assert "<script" not in text
    (policy,) = [a["content"] for tag, a in page.tags if a.get("http-equiv")]
    assert policy == csp("")
    assert (
        policy
        == "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    )


def test_run_facts_and_counts_on_top(tmp_path: Path) -> None:
    _, page = _page(tmp_path, one_per_stage())
    assert page.title == "Run 42 (nightly-sync, acme_ap): 5 invoices failed (6 rows)"
    words = page.words
    for fact in (
        "Run 42: 5 invoices failed (6 rows)",
        "Mapping acme_ap",
        "Flow nightly-sync",
        "Status failed",
        "Started 2025-03-01T05:00:00Z",
        "Finished 2025-03-01T05:07:30Z",
        "Counts failed: 3, sent: 120",
    ):
        assert fact in words
    counts = words.index("Failed rows by stage")
    first_group = words.index("Extract: the source row could not be read stage extract")
    assert counts < words.index("Failed rows by rule") < first_group


def test_rows_are_grouped_by_stage_then_rule_with_counts(tmp_path: Path) -> None:
    failures_ = [
        *one_per_stage(),
        stored(failure("mapping", "currency", "cur: EURO is not a code", value="EURO")),
        stored(failure("mapping", "date_format", "bad date", value="2021-13-01")),
    ]
    text, page = _page(tmp_path, failures_)
    h2 = re.findall(r"<h2>(.*?)</h2>", text)
    assert h2 == [
        "5 invoices not in AppZen",
        "Failed rows by stage",
        "Failed rows by rule",
        'Extract: the source row could not be read <span class="n">stage extract: 1 row</span>',
        'Mapping: a source value did not convert <span class="n">stage mapping: 3 rows</span>',
        "Validation: the mapped invoice breaks AppZen&#x27;s schema "
        '<span class="n">stage validation: 1 row</span>',
        'AppZen rejected the invoice <span class="n">stage appzen: 1 row</span>',
        "Retries exhausted: transient, the next run retries "
        '<span class="n">stage retries_exhausted: 1 row</span>',
        "Status sync: AppZen refused the ERP status "
        '<span class="n">stage status_sync: 1 row</span>',
    ]
    mapping = text[text.index("stage mapping: 3 rows") : text.index("stage validation:")]
    h3 = re.findall(r"<h3>Rule <code>(.*?)</code> <span class=\"n\">(.*?)</span></h3>", mapping)
    assert h3 == [("date_format", "2 rows"), ("currency", "1 row")]
    assert mapping.count('<article class="failure">') == 3
    assert '<p class="hint">Fix: date 31-02-2021 is not a date: set `format:`' in mapping
    assert "EURO is not an ISO-4217 code: add a value map" in mapping
    rule_table = page.words
    assert "mapping date_format 2 mapping currency 1 validation schema:missing 1" in rule_table


def test_hostile_values_are_escaped_text(tmp_path: Path) -> None:
    text, page = _page(tmp_path, _hostile())
    assert page.names() <= ALLOWED_TAGS | {"script"}
    assert page.attributes() <= ALLOWED_ATTRIBUTES
    assert _inline_scripts(text) == [script()]  # the page's own, and no other
    for markup in ("<script", "<img", "<svg"):
        assert markup not in text.lower().replace(f"<script>{script()}</script>".lower(), "")
    for payload in (TITLE_PAYLOAD, ELEMENT_PAYLOAD, IMG_PAYLOAD, ATTR_PAYLOAD, SVG_PAYLOAD):
        assert payload in page.text  # shown to the reader, as text
    assert "&lt;script&gt;document.title=&#x27;PWNED&#x27;&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in text
    assert page.title == "Run 42 (nightly-sync, acme_ap): 5 invoices failed (5 rows)"


def test_hostile_run_facts_are_escaped(tmp_path: Path) -> None:
    _, page = _page(
        tmp_path,
        [],
        flow=TITLE_PAYLOAD,
        mapping=IMG_PAYLOAD,
        parameters={"q": SVG_PAYLOAD},
        watermark=ELEMENT_PAYLOAD,
        status='x"><b>',
    )
    assert page.names() <= ALLOWED_TAGS
    assert page.attributes() <= ALLOWED_ATTRIBUTES
    assert TITLE_PAYLOAD in page.title
    assert IMG_PAYLOAD in page.title


def test_controls_and_bidi_marks_are_visible(tmp_path: Path) -> None:
    text, page = _page(
        tmp_path,
        [stored(failure(value="pay\u202eTXT.exe", message="nul\x00here", source_key="A\u2066B"))],
    )
    assert "pay<U+202E>TXT.exe" in page.text
    assert "nul\u2400here" in page.text
    assert "A<U+2066>B" in page.text
    for invisible in ("\u202e", "\x00", "\u2066"):
        assert invisible not in text


def test_a_10_mb_value_is_cut_and_non_ascii_kept(tmp_path: Path) -> None:
    text, page = _page(
        tmp_path,
        [stored(failure(value="Z" * 10_485_760, message="Lieferant Müller — 東京 ✓"))],
    )
    assert "[cut: 10,485,760 characters in all]" in page.text
    assert "Lieferant Müller — 東京 ✓" in page.text
    assert len(text) < 20_000


def test_a_registered_secret_never_appears(tmp_path: Path) -> None:
    secret = f"ck_{secrets.token_hex(12)}"
    redact.register(secret)
    text, _ = _page(
        tmp_path,
        [stored(failure(message=f"customer-key {secret}", value=secret, hint=secret))],
        parameters={"erp": "mysql+pymysql://etl:s3cr3t-pw@erp/db", "key": secret},
    )
    assert secret not in text
    assert "s3cr3t-pw" not in text
    assert "customer-key ***" in text


def test_an_empty_run_says_no_failed_rows(tmp_path: Path) -> None:
    text, page = _page(tmp_path, [], status="succeeded", counts={"sent": 120})
    assert page.title == "Run 42 (nightly-sync, acme_ap): no failed rows"
    assert "Run 42: no failed rows" in page.text
    assert "No failed rows: every row of this run went through." in page.text
    assert "<article" not in text


def test_many_rows_of_one_rule_point_to_the_csv(tmp_path: Path) -> None:
    many = [stored(failure(source_key=f"K{i}")) for i in range(MAX_ROWS_PER_RULE + 3)]
    text, page = _page(tmp_path, many)
    assert text.count('<article class="failure">') == MAX_ROWS_PER_RULE
    assert "… and 3 rows more of this rule: see run-42-failures.csv" in page.words


def test_the_worklist_reads_without_its_script(tmp_path: Path) -> None:
    page = Page(write_worklist(tmp_path).html.read_text("utf-8"))
    controls = next(attrs for tag, attrs in page.tags if attrs.get("id") == "wl-controls")
    assert "hidden" in controls  # shown by the script only: inert without it
    rows = [attrs for tag, attrs in page.tags if attrs.get("class") == "invoice"]
    assert len(rows) == 12
    assert not [row for row in rows if "hidden" in row]
    assert rows[0] == {
        "class": "invoice",
        "data-group": "0",
        "data-key": "5100000101",
        "data-number": "AC-2025-0311",
        "data-supplier": "V100",
        "data-amount": "1250.00",
        "data-currency": "EUR",
        "data-date": "2025-02-10",
        "data-age": "0",
    }
    assert [row["data-age"] for row in rows][:4] == ["0", "2", "9", "45"]
    words = page.words
    assert "2025-02-20 (9 days)" in words
    assert "Supplier all suppliers V100 Acme Industrial GmbH V200 Globex Supplies Ltd" in words


def test_each_invoice_links_to_its_erp_document(tmp_path: Path) -> None:
    template = "https://erp.example/ap/{invoice_id}?doc={invoice_number}"
    page = Page(write_worklist(tmp_path, template).html.read_text("utf-8"))
    links = [attrs for tag, attrs in page.tags if tag == "a" and attrs.get("class") == "doc"]
    assert len(links) == 12
    assert links[4] == {
        "class": "doc",
        "href": "https://erp.example/ap/5100000105?doc=IN%2F0045",
        "rel": "noopener noreferrer",
        "target": "_blank",
    }
    plain = Page(write_worklist(tmp_path / "plain").html.read_text("utf-8"))
    assert not [attrs for tag, attrs in plain.tags if tag == "a" and attrs.get("class") == "doc"]


def test_a_hostile_key_stays_inside_its_link(tmp_path: Path) -> None:
    keyless = failure("extract", "unreadable", "3 cells", source_key=None)
    hostile = [*_hostile(), stored(keyless)]
    paths = write_reports(
        make_run(), hostile, tmp_path, document_url="https://erp.example/ap/{invoice_id}"
    )
    page = Page(paths.html.read_text("utf-8"))
    hrefs = [a["href"] for tag, a in page.tags if tag == "a" and a.get("class") == "doc"]
    assert len(hrefs) == 5  # one per hostile key; the keyless failure has no document
    for href in hrefs:
        assert href is not None
        assert href.startswith("https://erp.example/ap/")
        assert not set(href.removeprefix("https://erp.example/ap/")) & set("<>\"' /?#&")
    assert "https://erp.example/ap/%3Cscript%3Edocument.title%3D%27PWNED%27%3C%2Fscript%3E" in hrefs
