"""The report's worklist: one table row per invoice not in AppZen, grouped by reason, with the
controls (search by invoice number, filter by supplier / reason / age, sort, group) of the page's
own script.

The page is complete without the script: every invoice is a plain table row and the controls are
``hidden`` until the script shows them. The script is ``worklist.js`` inlined verbatim; the page's
Content-Security-Policy allows exactly its sha256 (:func:`script_hash`) and nothing else. Every
value from the data goes through :func:`~pipeline.report.cells.cell` and ``html.escape``, in text
and in ``data-*`` attributes alike; the script only reads those and sets ``textContent``.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Final

from pipeline.mapping.links import document_link
from pipeline.report.cells import cell
from pipeline.report.invoices import NO_KEY, InvoiceEntry, Problem, amount_at_risk, by_reason

HEADINGS: Final = (
    "Invoice",
    "Invoice no",
    "Supplier",
    "Date",
    "Total",
    "Since",
    "Runs",
    "Problems",
    "Fix",
)
AGES: Final = (
    (0, "any age"),
    (1, "1 day or older"),
    (7, "7 days or older"),
    (30, "30 days or older"),
)
SORTS: Final = (
    ("", "by reason, as listed"),
    ("amount", "amount, largest first"),
    ("age", "age, oldest first"),
    ("supplier", "supplier, A to Z"),
    ("date", "invoice date, oldest first"),
)


@cache
def script() -> str:
    """The worklist script exactly as the page inlines it."""
    text = files("pipeline.report").joinpath("worklist.js").read_text(encoding="utf-8")
    if "</" in text:  # it would end the <script> element early
        raise ValueError("worklist.js must not contain '</'")
    return text


def script_hash(text: str) -> str:
    """The CSP source that allows the inline script ``text`` and only it."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def esc(text: str) -> str:
    """HTML-escape a cell (quotes included)."""
    return html.escape(text, quote=True)


def invoices(count: int) -> str:
    """``1 invoice`` / ``N invoices``."""
    return f"{count:,} invoice" if count == 1 else f"{count:,} invoices"


def age_days(entry: InvoiceEntry, as_of: date) -> int:
    """Whole days the invoice has been failing on ``as_of`` (0: new in this run)."""
    try:
        since = datetime.strptime(entry.first_seen, "%Y-%m-%d").date()
    except ValueError:
        return 0
    return max((as_of - since).days, 0)


def worklist_html(
    entries: Sequence[InvoiceEntry], as_of: date, document_url: str | None = None
) -> Iterator[str]:
    """The worklist section: headline, amount at risk, the (hidden) controls and the table; with
    a ``document_url`` template, each invoice's key links to its document in the ERP."""
    groups = by_reason(entries)
    yield f'<section id="worklist">\n<h2>{invoices(len(entries))} not in AppZen</h2>\n'
    sums, unknown = amount_at_risk(entries)
    risk = ", ".join(f"{esc(cell(currency))} {amount:,.2f}" for currency, amount in sums)
    if unknown:
        risk += f"{'; ' if risk else ''}{invoices(unknown)} with no readable total"
    yield f'<p class="risk">Amount at risk: {risk or "unknown"}</p>\n'
    yield _controls(entries, [reason for reason, _ in groups])
    yield '<table id="wl-table">\n<thead><tr>'
    yield "".join(f"<th>{name}</th>" for name in HEADINGS) + "</tr></thead>\n<tbody>\n"
    for index, (reason, group) in enumerate(groups):
        yield (
            f'<tr class="reason" data-group="{index}"><th colspan="{len(HEADINGS)}">'
            f'{esc(cell(reason))} <span class="n count">{invoices(len(group))}</span></th></tr>\n'
        )
        for entry in group:
            link = _link(document_url, entry)
            yield _row(entry, index, age_days(entry, as_of), link)
    yield "</tbody>\n</table>\n</section>\n"


def _options(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(f'<option value="{esc(value)}">{esc(label)}</option>' for value, label in pairs)


def _controls(entries: Sequence[InvoiceEntry], reasons: Sequence[str]) -> str:
    supplier_options = [("", "all suppliers")] + [
        (cell(entry_id), cell(label)) for label, entry_id in _supplier_pairs(entries)
    ]
    reason_options = [("", "all reasons")] + [(str(i), cell(r)) for i, r in enumerate(reasons)]
    return (
        '<div id="wl-controls" class="controls" hidden>\n'
        '<label>Invoice no <input type="search" id="wl-search" '
        'placeholder="invoice number or ERP key" autocomplete="off"></label>\n'
        f'<label>Supplier <select id="wl-supplier">{_options(supplier_options)}</select></label>\n'
        f'<label>Reason <select id="wl-reason">{_options(reason_options)}</select></label>\n'
        f'<label>Age <select id="wl-age">{_options([(str(d), t) for d, t in AGES])}</select>'
        "</label>\n"
        f'<label>Sort <select id="wl-sort">{_options(SORTS)}</select></label>\n'
        '<label><input type="checkbox" id="wl-grouped" checked> group by reason</label>\n'
        '<output id="wl-shown"></output>\n</div>\n'
    )


def _supplier(entry: InvoiceEntry) -> str:
    facts = entry.facts
    return " ".join(x for x in (facts.supplier_id, facts.supplier_name) if x)


def _supplier_pairs(entries: Sequence[InvoiceEntry]) -> list[tuple[str, str]]:
    """``(label, supplier id)`` of every supplier with an id, by label."""
    return sorted({(_supplier(e), e.facts.supplier_id) for e in entries if e.facts.supplier_id})


def _row(entry: InvoiceEntry, group: int, age: int, link: str | None) -> str:
    facts = entry.facts
    total = " ".join(x for x in (facts.total_amount, facts.currency) if x)
    since = (
        f'<span class="nw">{esc(cell(entry.first_seen))}</span> ({_days(age)})'
        if entry.first_seen
        else "this run"
    )
    attributes = {
        "group": str(group),
        "key": entry.key,
        "number": facts.invoice_number or "",
        "supplier": facts.supplier_id or "",
        "amount": _number(facts.total_amount),
        "currency": facts.currency or "",
        "date": facts.invoice_date or "",
        "age": str(age),
    }
    data = "".join(f' data-{name}="{esc(cell(value))}"' for name, value in attributes.items())
    cells = (
        ("nw", _key(entry.key, link)),
        ("nw", esc(cell(facts.invoice_number))),
        ("", esc(cell(_supplier(entry)))),
        ("nw", esc(cell(facts.invoice_date))),
        ("nw num", esc(cell(total))),
        ("", since),
        ("num", str(entry.runs_seen)),
        ("", "<ul>" + "".join(f"<li>{_problem(p)}</li>" for p in entry.problems) + "</ul>"),
        ("", "<ul>" + "".join(f"<li>{_fixes(p)}</li>" for p in entry.problems) + "</ul>"),
    )
    tds = "".join(
        f'<td class="{kind}">{text}</td>' if kind else f"<td>{text}</td>" for kind, text in cells
    )
    return f'<tr class="invoice"{data}>{tds}</tr>\n'


def _link(document_url: str | None, entry: InvoiceEntry) -> str | None:
    if document_url is None or entry.key.startswith(NO_KEY):
        return None  # a failure without an ERP key has no document to link to
    return document_link(document_url, entry.key, entry.facts)


def _key(key: str, link: str | None) -> str:
    """The invoice's ERP key, a link to its document when the mapping says where that is."""
    code = f"<code>{esc(cell(key))}</code>"
    if link is None:
        return code
    return f'<a class="doc" href="{esc(link)}" rel="noopener noreferrer" target="_blank">{code}</a>'


def _days(age: int) -> str:
    return "new" if age == 0 else "1 day" if age == 1 else f"{age} days"


def _number(amount: str | None) -> str:
    """``amount`` if it reads as a plain decimal number (for sorting), else empty."""
    text = (amount or "").strip()
    try:
        return text if Decimal(text).is_finite() else ""
    except InvalidOperation:
        return ""


def _problem(problem: Problem) -> str:
    text = esc(cell(problem.message))
    if fields := problem.fields_listed():
        text += f' <span class="n">{esc(cell(fields))}</span>'
    return text


def _fixes(problem: Problem) -> str:
    text = f'<span class="ap"><strong>In the ERP (AP):</strong> {esc(cell(problem.ap_hint))}</span>'
    if problem.author_hint:
        author = esc(cell(problem.author_hint))
        text += (
            f'<br><span class="author"><strong>In the mapping (author):</strong> {author}</span>'
        )
    return text
