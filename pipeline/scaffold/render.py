"""A draft mapping file as YAML text: the matched columns in the fields they feed, the number and
date formats their values showed, and a TODO mark on every required field left open.

A TODO mark is a comment ``# TODO(mapping init): …`` over a value ``"TODO(mapping init): …"``,
which ``mapping check`` refuses with the file, line and field until someone writes the column.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pipeline.mapping.loader import TODO_MARK
from pipeline.scaffold.matching import Candidate, Match, fit
from pipeline.scaffold.targets import HEADER, KEY, LINES, STATUS, WATERMARK, Target, words

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def scalar(text: str) -> str:
    """``text`` as a YAML scalar: plain when safe, else double-quoted."""
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


@dataclass
class Rendered:
    """The draft's YAML lines and the TODO marks left in it (``path: what is missing``)."""

    lines: list[str] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)

    def todo(self, indent: str, key: str, target: Target, options: Sequence[str]) -> None:
        """A TODO mark for ``target`` at ``key``, naming the columns that could be it."""
        could = f"; columns that could be it: {', '.join(options[:4])}" if options else ""
        self.lines.append(f"{indent}# {TODO_MARK}: no column was found for {target.hint}{could}")
        self.lines.append(f"{indent}{key}: {scalar(f'{TODO_MARK}: {target.hint}')}")
        self.marks.append(f"{target.label}: {target.hint}")


@dataclass(frozen=True)
class DraftInput:
    """What the renderer needs: the name, the source block, the columns and their matches."""

    name: str
    description: str
    source: list[str]
    columns: list[Candidate]
    matches: dict[str, Match]
    intro: list[str]
    key_hint: str | None = None  # no key column found and none to fall back on: why


def render(draft: DraftInput, schema_comment: str | None) -> Rendered:
    """The whole draft mapping file."""
    out = Rendered()
    if schema_comment:
        out.lines += [schema_comment, "#"]
    out.lines += [f"# {line}" if line else "#" for line in draft.intro]
    out.lines += [f"name: {draft.name}", f"description: {scalar(draft.description)}", ""]
    out.lines += ["source:", *draft.source, "", "column_case: insensitive"]
    _top(out, draft)
    _formats(out, draft)
    out.lines += ["", "header:"]
    _fields(out, draft, HEADER, "  ")
    out.lines += ["", "invoice_lines:"]
    _fields(out, draft, LINES, "  ")
    return out


def _top(out: Rendered, draft: DraftInput) -> None:
    key = draft.matches.get(KEY.dotted)
    if key is None and draft.key_hint is None:
        key = draft.matches.get("header.invoice_number")  # a flat export: its invoice number
    if key is None:
        hint = draft.key_hint or KEY.hint
        out.todo("", "invoice_key", replace(KEY, hint=hint), [])
    else:
        out.lines.append(f"invoice_key: {scalar(key.column.name)} # sent as invoice_id")
    mark = draft.matches.get(WATERMARK.dotted)
    if mark is not None:
        out.lines.append(f"watermark_column: {scalar(mark.column.name)}")
    status = draft.matches.get(STATUS.dotted)
    if status is not None:
        out.lines += ["", "status:", f"  column: {scalar(status.column.name)}"]


def _formats(out: Rendered, draft: DraftInput) -> None:
    used = {match.column.name for match in draft.matches.values()}
    profiles = [c.profile for c in draft.columns if c.name in used]
    numbers = [p for p in profiles if p.kind == "number" and p.samples]
    block = []
    if numbers and numbers[0].decimal_separator != ".":
        block.append(f'  decimal_separator: "{numbers[0].decimal_separator}"')
    if numbers and numbers[0].thousands_separator:
        block.append(f"  thousands_separator: {json.dumps(numbers[0].thousands_separator)}")
    common = _common_date_format(draft)
    if common != "iso":
        block.append(f"  date_formats: [{json.dumps(common)}]")
    if any(p.ambiguous for p in profiles):
        block.append("  # check: the samples fit both day/month orders; this one was chosen")
    if block:
        out.lines += ["", "formats:", *block]


def _fields(out: Rendered, draft: DraftInput, targets: Sequence[Target], indent: str) -> None:
    groups: dict[str, list[Target]] = {}
    for target in targets:
        groups.setdefault(target.path[1], []).append(target)
    for name, members in groups.items():
        if len(members) == 1 and len(members[0].path) == 2:
            _leaf(out, draft, members[0], name, indent)
        elif name == "extra":
            _extra(out, draft, members, indent)
        else:
            _money(out, draft, members[0], name, indent)


def _leaf(out: Rendered, draft: DraftInput, target: Target, key: str, indent: str) -> None:
    match = draft.matches.get(target.dotted)
    if match is None:
        if target.required:
            out.todo(indent, key, target, _options(draft, target))
        return
    out.lines.append(f"{indent}{key}: {_value(match, draft)}")


def _value(match: Match, draft: DraftInput, *, date_type: bool = False) -> str:
    """The value spec of a matched column: the bare column, or with the date format its text
    has when that is not the file's usual one (and ``type: date`` where asked)."""
    column = scalar(match.column.name)
    fmt = match.column.profile.date_format
    extras = ["type: date"] if date_type else []
    if match.target.want == "date" and fmt is not None and fmt != _common_date_format(draft):
        extras.append(f"format: {json.dumps(fmt)}")
    return f"{{ column: {column}, {', '.join(extras)} }}" if extras else column


def _common_date_format(draft: DraftInput) -> str:
    """The date format most matched text date columns have (``iso`` when none)."""
    used = {match.column.name for match in draft.matches.values()}
    dates = [c.profile.date_format for c in draft.columns if c.name in used]
    formats = [fmt for fmt in dates if fmt]
    return Counter(formats).most_common(1)[0][0] if formats else "iso"


def _money(out: Rendered, draft: DraftInput, target: Target, key: str, indent: str) -> None:
    amount = draft.matches.get(target.dotted)
    if amount is None and not target.required:
        return
    currency = draft.matches.get("header.total_amount.currency")
    out.lines.append(f"{indent}{key}:")
    inner = indent + "  "
    if amount is None:
        out.todo(inner, "amount", target, _options(draft, target))
    else:
        out.lines.append(f"{inner}amount: {_value(amount, draft)}")
    if currency is not None:
        out.lines.append(f"{inner}currency: {scalar(currency.column.name)}")
    elif target.required:
        out.todo(inner, "currency", _currency_target(), _options(draft, _currency_target()))


def _currency_target() -> Target:
    return next(t for t in HEADER if t.dotted == "header.total_amount.currency")


def _extra(out: Rendered, draft: DraftInput, members: Sequence[Target], indent: str) -> None:
    found = [(t, draft.matches[t.dotted]) for t in members if t.dotted in draft.matches]
    if not found:
        return
    out.lines.append(f"{indent}extra:")
    for target, match in found:
        out.lines.append(
            f"{indent}  {target.path[-1]}: {{ column: {scalar(match.column.name)}, type: date }}"
        )


def _options(draft: DraftInput, target: Target) -> list[str]:
    """Columns nobody reads whose values would suit ``target`` (for text: text columns; for
    amounts: not ids or codes)."""
    used = {match.column.name for match in draft.matches.values()}
    found = []
    for column in draft.columns:
        if column.name in used or fit(target.want, column.profile) < 0.9:
            continue
        if target.level == "lines" and column.rows == "header":
            continue
        if target.want == "text" and column.profile.kind != "text":
            continue
        if target.want == "amount" and words(column.name)[-1:] in (("id",), ("no",), ("code",)):
            continue
        found.append(column.name)
    return found
