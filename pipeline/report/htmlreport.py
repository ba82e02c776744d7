"""The HTML failed-row report: one self-contained page (inline CSS, no scripts, strict CSP).

Every text on the page is a :func:`~pipeline.report.cells.cell` (scrubbed, controls and bidi
marks made visible, cut) and then ``html.escape(quote=True)``: nothing from the data is ever
markup. The Content-Security-Policy forbids scripts, images, fonts, frames and fetches even if
something slipped through.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Sequence
from typing import Final

from pipeline.report.cells import cell
from pipeline.report.invoices import InvoiceEntry, Problem, amount_at_risk, by_reason
from pipeline.report.table import (
    STAGE_TITLES,
    RuleGroup,
    StageGroup,
    counts_by_rule,
    counts_by_stage,
    group_rows,
    utc_iso,
)
from pipeline.staging.records import RunRecord

CSP: Final = "default-src 'none'; style-src 'unsafe-inline'"
MAX_ROWS_PER_RULE: Final = 500
"""Rows shown per rule on the page; the CSV always has them all."""

_DETAILS: Final = (
    "field path",
    "source column",
    "offending value",
    "HTTP status",
    "error code",
    "x-correlation-id",
    "attempts",
    "first seen",
    "last seen",
)
_CODE: Final = frozenset({"field path", "source column", "offending value", "x-correlation-id"})

STYLE: Final = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;
 background:#f6f7f9;margin:0;padding:24px 32px;max-width:1280px}
h1{font-size:26px;margin:0 0 12px}h2{font-size:21px;margin:32px 0 8px;
 border-bottom:2px solid #d0d7de;padding-bottom:4px}h3{font-size:17px;margin:20px 0 8px}
h4{font-size:15px;margin:0 0 6px}
.n{font-weight:normal;color:#57606a;font-size:.85em;margin-left:8px}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.run dt,dl.details dt{color:#57606a}dl.run dd,dl.details dd{margin:0}
table{border-collapse:collapse;background:#fff;margin:4px 0}
th,td{border:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.failure{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 14px;
 margin:8px 0}
.message{margin:4px 0}
.hint{background:#fff8c5;border-left:5px solid #d4a72c;padding:6px 10px;margin:8px 0;
 font-weight:600}
.hint.none{background:#f6f7f9;border-left-color:#d0d7de;font-weight:normal;color:#57606a}
dl.details{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0 0;
 font-size:14px}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eff1f3;
 padding:1px 4px;border-radius:3px}
td,dd,p,h3,h4,code{overflow-wrap:anywhere;word-break:break-word;white-space:pre-wrap}
.status-succeeded{color:#1a7f37;font-weight:600}
.status-amber{color:#7d4e00;background:#fff8c5;border:1px solid #d4a72c;border-radius:4px;
 padding:0 6px;font-weight:600}
tr.reason th{background:#eaeef2;font-size:15px}td ul{margin:0;padding-left:18px}
.ap{color:#0a3069}.author{color:#57606a}.risk{font-size:17px;margin:4px 0 10px}
.status-failed,.status-interrupted{
 color:#cf222e;font-weight:600}
.empty{font-size:20px;color:#1a7f37;font-weight:600}
.more{color:#57606a;font-style:italic}
"""


def esc(text: str) -> str:
    """HTML-escape a cell (quotes included)."""
    return html.escape(text, quote=True)


def _plural(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def _invoices(count: int) -> str:
    return f"{count:,} invoice" if count == 1 else f"{count:,} invoices"


def html_lines(
    run: RunRecord,
    rows: Sequence[dict[str, str]],
    csv_name: str,
    entries: Sequence[InvoiceEntry] = (),
) -> Iterator[str]:
    """The page, in pieces to write one after the other: the run, the worklist of invoices
    (``entries``), then every failed row by stage and rule."""
    what = f"{_plural(len(rows))} failed" if rows else "no failed rows"
    if entries:
        what = f"{_invoices(len(entries))} failed ({_plural(len(rows))})"
    title = f"Run {run.id} ({run.flow}, {run.mapping}): {what}"
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(cell(title))}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    )
    yield from _header(run, what, csv_name, len(entries))
    if entries:
        yield from _worklist(entries)
    if not rows:
        yield '<p class="empty">No failed rows: every row of this run went through.</p>\n'
    else:
        yield from _counts(rows)
        for index, group in enumerate(group_rows(rows), start=1):
            yield from _stage(index, group, csv_name)
    yield "</body>\n</html>\n"


def _header(run: RunRecord, what: str, csv_name: str, failed: int) -> Iterator[str]:
    yield f'<header>\n<h1>Run {run.id}: {esc(what)}</h1>\n<dl class="run">\n'
    status = esc(cell(run.status))
    badge = f'<span class="status-{status}">{status}</span>'
    if run.status == "succeeded" and failed:
        badge = f'<span class="status-amber">succeeded with {_invoices(failed)} failed</span>'
    facts = [
        ("Mapping", esc(cell(run.mapping))),
        ("Flow", esc(cell(run.flow))),
        ("Status", badge),
        *([("Reason", esc(cell(run.reason)))] if run.reason else []),
        ("Started", esc(utc_iso(run.started_at))),
        ("Finished", esc(utc_iso(run.finished_at)) or "not finished"),
        ("Historical", "yes" if run.historical else "no"),
        ("Counts", esc(cell(", ".join(f"{k}: {v}" for k, v in sorted(run.counts.items()))))),
        ("Watermark", esc(cell(run.watermark))),
        ("Parameters", f"<code>{esc(cell(_json(run.parameters)))}</code>"),
        ("CSV", f'<a href="{esc(csv_name)}">{esc(csv_name)}</a> (every row, for Excel)'),
    ]
    for term, value in facts:
        yield f"<dt>{term}</dt><dd>{value}</dd>\n"
    yield "</dl>\n</header>\n"


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _counts(rows: Sequence[dict[str, str]]) -> Iterator[str]:
    yield "<section>\n<h2>Failed rows by stage</h2>\n<table>\n"
    yield "<tr><th>Stage</th><th>What it means</th><th>Rows</th></tr>\n"
    for index, (stage, count) in enumerate(counts_by_stage(rows), start=1):
        meaning = esc(STAGE_TITLES.get(stage, ""))
        yield (
            f'<tr><td><a href="#stage-{index}">{esc(stage)}</a></td><td>{meaning}</td>'
            f'<td class="num">{count:,}</td></tr>\n'
        )
    yield "</table>\n<h2>Failed rows by rule</h2>\n<table>\n"
    yield "<tr><th>Stage</th><th>Rule</th><th>Rows</th></tr>\n"
    for stage, rule, count in counts_by_rule(rows):
        yield (
            f"<tr><td>{esc(stage)}</td><td><code>{esc(rule)}</code></td>"
            f'<td class="num">{count:,}</td></tr>\n'
        )
    yield "</table>\n</section>\n"


def _stage(index: int, group: StageGroup, csv_name: str) -> Iterator[str]:
    yield (
        f'<section id="stage-{index}">\n<h2>{esc(group.title)} '
        f'<span class="n">stage {esc(group.stage)}: {_plural(group.count)}</span></h2>\n'
    )
    for rule in group.rules:
        yield from _rule(rule, csv_name)
    yield "</section>\n"


def _rule(group: RuleGroup, csv_name: str) -> Iterator[str]:
    count = len(group.rows)
    yield (
        f'<h3>Rule <code>{esc(group.rule)}</code> <span class="n">{_plural(count)}</span></h3>\n'
    )
    for row in group.rows[:MAX_ROWS_PER_RULE]:
        yield _failure(row)
    if count > MAX_ROWS_PER_RULE:
        more = count - MAX_ROWS_PER_RULE
        yield f'<p class="more">… and {_plural(more)} more of this rule: see {esc(csv_name)}</p>\n'


def _failure(row: dict[str, str]) -> str:
    key = esc(row["source key"]) or "(no key)"
    where = (
        f' <span class="n">{esc(row["source location"])}</span>' if row["source location"] else ""
    )
    hint = row["fix hint"]
    fix = (
        f'<p class="hint">Fix: {esc(hint)}</p>'
        if hint
        else '<p class="hint none">No fix hint known: read the message.</p>'
    )
    details = "".join(
        f"<dt>{name}</dt><dd>{_detail(name, row[name])}</dd>"
        for name in _DETAILS
        if row[name] and not (name == "attempts" and row[name] == "0")
    )
    return (
        f'<article class="failure">\n<h4>Invoice <code>{key}</code>{where}</h4>\n'
        f'<p class="message">{esc(row["message"])}</p>\n{fix}\n'
        f'<dl class="details">{details}</dl>\n</article>\n'
    )


def _detail(name: str, value: str) -> str:
    return f"<code>{esc(value)}</code>" if name in _CODE else esc(value)


WORKLIST_HEADINGS: Final = (
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


def _worklist(entries: Sequence[InvoiceEntry]) -> Iterator[str]:
    """One row per invoice, grouped by reason (largest group first), with the amount at risk."""
    yield f'<section id="worklist">\n<h2>{_invoices(len(entries))} not in AppZen</h2>\n'
    sums, unknown = amount_at_risk(entries)
    risk = ", ".join(f"{esc(cell(currency))} {amount:,.2f}" for currency, amount in sums)
    if unknown:
        risk += f"{'; ' if risk else ''}{_invoices(unknown)} with no readable total"
    yield f'<p class="risk">Amount at risk: {risk or "unknown"}</p>\n<table>\n'
    yield "<tr>" + "".join(f"<th>{name}</th>" for name in WORKLIST_HEADINGS) + "</tr>\n"
    for reason, group in by_reason(entries):
        yield (
            f'<tr class="reason"><th colspan="{len(WORKLIST_HEADINGS)}">{esc(cell(reason))}'
            f' <span class="n">{_invoices(len(group))}</span></th></tr>\n'
        )
        for entry in group:
            yield _worklist_row(entry)
    yield "</table>\n</section>\n"


def _worklist_row(entry: InvoiceEntry) -> str:
    facts = entry.facts
    supplier = " ".join(x for x in (facts.supplier_id, facts.supplier_name) if x)
    total = " ".join(x for x in (facts.total_amount, facts.currency) if x)
    cells = (
        f"<code>{esc(cell(entry.key))}</code>",
        esc(cell(facts.invoice_number)),
        esc(cell(supplier)),
        esc(cell(facts.invoice_date)),
        f'<span class="num">{esc(cell(total))}</span>',
        esc(cell(entry.first_seen)),
        str(entry.runs_seen),
        "<ul>" + "".join(f"<li>{_problem(p)}</li>" for p in entry.problems) + "</ul>",
        "<ul>" + "".join(f"<li>{_fixes(p)}</li>" for p in entry.problems) + "</ul>",
    )
    return "<tr>" + "".join(f"<td>{value}</td>" for value in cells) + "</tr>\n"


def _problem(problem: Problem) -> str:
    text = esc(cell(problem.message))
    if len(problem.fields) > 1:
        shown = ", ".join(problem.fields[:6]) + (" …" if len(problem.fields) > 6 else "")
        text += f' <span class="n">{len(problem.fields)} fields: {esc(cell(shown))}</span>'
    return text


def _fixes(problem: Problem) -> str:
    text = f'<span class="ap">ERP (AP): {esc(cell(problem.ap_hint))}</span>'
    if problem.author_hint:
        text += f'<br><span class="author">Mapping: {esc(cell(problem.author_hint))}</span>'
    return text
