"""The HTML failed-row report: one self-contained page (inline CSS, one hashed inline script,
strict CSP).

Every text on the page is a :func:`~pipeline.report.cells.cell` (scrubbed, controls and bidi
marks made visible, cut) and then ``html.escape(quote=True)``: nothing from the data is ever
markup. The Content-Security-Policy allows the worklist's own script by its sha256 and forbids
every other script (inline, injected, ``on…`` handlers, ``eval``), images, fonts, frames, forms
and fetches even if something slipped through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Final

from pipeline.report.cells import cell
from pipeline.report.invoices import InvoiceEntry
from pipeline.report.table import (
    STAGE_TITLES,
    RuleGroup,
    StageGroup,
    counts_by_rule,
    counts_by_stage,
    group_rows,
    utc_iso,
)
from pipeline.report.worklist import esc, invoices, script, script_hash, worklist_html
from pipeline.staging.records import RunRecord
from pipeline.summary import shown_status


def csp(script_text: str) -> str:
    """The page's Content-Security-Policy: nothing but inline CSS and the one inline script
    whose exact text is ``script_text`` (no script at all when it is empty)."""
    scripts = f"script-src {script_hash(script_text)}; " if script_text else ""
    return (
        f"default-src 'none'; style-src 'unsafe-inline'; {scripts}"
        "base-uri 'none'; form-action 'none'"
    )


CSP: Final = csp(script())
"""The policy of every page (the script is fixed; :func:`csp` recomputes it from the text)."""
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
.status-failed,.status-interrupted,.status-cancelled{
 color:#cf222e;font-weight:600}
.empty{font-size:20px;color:#1a7f37;font-weight:600}
.more{color:#57606a;font-style:italic}
.controls{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center;background:#fff;
 border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0;position:sticky;top:0}
.controls input,.controls select{font:inherit;margin-left:4px}
.controls output{color:#57606a;margin-left:auto}
[hidden]{display:none !important}
#wl-table td{overflow-wrap:break-word;word-break:normal}
#wl-table td.nw,#wl-table td.nw code,#wl-table span.nw{white-space:nowrap;overflow-wrap:normal;
 word-break:normal}
#wl-table td:nth-child(8){min-width:14em}#wl-table td:last-child{min-width:24em}
"""


def _plural(count: int) -> str:
    return f"{count:,} row" if count == 1 else f"{count:,} rows"


def html_lines(
    run: RunRecord,
    rows: Sequence[dict[str, str]],
    csv_name: str,
    entries: Sequence[InvoiceEntry] = (),
    document_url: str | None = None,
) -> Iterator[str]:
    """The page, in pieces to write one after the other: the run, the worklist of invoices
    (``entries``, each linked to its ERP document by the ``document_url`` template, if any), then
    every failed row by stage and rule."""
    what = f"{_plural(len(rows))} failed" if rows else "no failed rows"
    if entries:
        what = f"{invoices(len(entries))} failed ({_plural(len(rows))})"
    title = f"Run {run.id} ({run.flow}, {run.mapping}): {what}"
    code = script() if entries else ""
    yield (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp(code))}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(cell(title))}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    )
    yield from _header(run, what, csv_name, len(entries))
    if entries:
        yield from worklist_html(entries, run.started_at.date(), document_url)
    if not rows:
        yield '<p class="empty">No failed rows: every row of this run went through.</p>\n'
    else:
        yield from _counts(rows)
        for index, group in enumerate(group_rows(rows), start=1):
            yield from _stage(index, group, csv_name)
    if code:
        yield f"<script>{code}</script>\n"
    yield "</body>\n</html>\n"


def _header(run: RunRecord, what: str, csv_name: str, failed: int) -> Iterator[str]:
    yield f'<header>\n<h1>Run {run.id}: {esc(what)}</h1>\n<dl class="run">\n'
    status = esc(cell(run.status))
    badge = f'<span class="status-{status}">{status}</span>'
    if run.status == "succeeded" and failed:
        badge = f'<span class="status-amber">{esc(shown_status(run.status, failed))}</span>'
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
