"""The report as an AP analyst reads it: one entry per invoice, its problems collapsed by cause.

Failures with one root cause (one bad currency column feeding 19 amount fields) are one
:class:`Problem` listing every field. Each problem speaks twice: what to fix in the ERP (for AP)
and what to change in the mapping (for its author), and neither ever suggests papering over
missing data (a ``default:`` for a value that is simply not there). An entry carries what the
ledger knows of the invoice (number, supplier, date, total and currency, since when, how many
runs); the amount at risk is summed per currency over the invoices whose total was read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from pipeline.failures import DELIVERY_STAGES, InvoiceFacts, RowFailure
from pipeline.report.voices import ap_hint, author_hint
from pipeline.staging.ledger import LedgerEntry
from pipeline.staging.records import StoredFailure

_SHOWN: Final = 60
NO_KEY: Final = "(no key #"
"""How the key of a failure without an ERP key starts (``(no key #3)``): one entry each."""

REASON_TITLES: Final[dict[str, str]] = {
    "required": "A required value is missing",
    "date_format": "A date is not a date",
    "datetime_format": "A date-time is not a date-time",
    "currency": "An unknown currency",
    "decimal": "An amount is not a number",
    "range": "An amount is out of range",
    "appzen_400": "AppZen refused the invoice",
    "appzen_422": "AppZen refused the invoice",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One cause of an invoice's failure, with every field it broke."""

    stage: str
    rule: str
    fields: tuple[str, ...]
    source_column: str | None
    value: str | None
    message: str
    ap_hint: str
    author_hint: str | None

    @property
    def reason(self) -> str:
        """What the problem is, for grouping: the rule's title, or the stage and rule."""
        return REASON_TITLES.get(self.rule) or f"{self.stage}: {self.rule}"

    def fields_listed(self, shown: int = 6) -> str:
        """``19 fields: a, b, c, d, e, f …`` when the problem broke several fields, else empty."""
        if len(self.fields) < 2:
            return ""
        listed = ", ".join(self.fields[:shown]) + (" …" if len(self.fields) > shown else "")
        return f"{len(self.fields)} fields: {listed}"

    @property
    def brief(self) -> str:
        """The problem for a narrow column: its message and how many fields it broke."""
        return (
            f"{self.message} ({len(self.fields)} fields)" if len(self.fields) > 1 else self.message
        )

    @property
    def text(self) -> str:
        """The problem in one line of plain text: its message and the fields it broke."""
        fields = self.fields_listed()
        return f"{self.message} ({fields})" if fields else self.message


@dataclass(frozen=True, slots=True)
class InvoiceEntry:
    """One invoice of the worklist."""

    key: str
    facts: InvoiceFacts
    state: str
    runs_seen: int
    first_seen: str
    problems: tuple[Problem, ...]

    @property
    def reason(self) -> str:
        """The reason the invoice is listed under: its first problem's."""
        return self.problems[0].reason if self.problems else "unknown"


def collapse(failures: Iterable[RowFailure]) -> tuple[Problem, ...]:
    """The failures of one invoice as problems: those of one cause (stage, rule, source column
    and value) become one problem listing their fields."""
    grouped: dict[tuple[object, ...], list[RowFailure]] = {}
    for failure in failures:
        cause: tuple[object, ...] = (failure.stage, failure.rule, failure.source_column)
        cause += (
            (failure.value,) if failure.source_column else (failure.field_path, failure.message)
        )
        grouped.setdefault(cause, []).append(failure)
    return tuple(_problem(group) for group in grouped.values())


def _problem(group: list[RowFailure]) -> Problem:
    first = group[0]
    fields = tuple(dict.fromkeys(f.field_path for f in group if f.field_path))
    return Problem(
        stage=first.stage,
        rule=first.rule,
        fields=fields,
        source_column=first.source_column,
        value=first.value,
        message=first.message,
        ap_hint=ap_hint(first),
        author_hint=author_hint(first),
    )


def invoice_entries(
    failures: Sequence[StoredFailure],
    ledger: Mapping[str, LedgerEntry] | None = None,
    carried: Sequence[LedgerEntry] = (),
) -> list[InvoiceEntry]:
    """One entry per invoice that did not reach AppZen: those that failed in the run (keyless
    failures: one entry each), then ``carried`` open ledger entries of earlier runs; ``ledger``
    names their invoices. Status-sync and write-back failures are not entries (the invoice is
    in AppZen): the rows below the worklist show them."""
    ledger = ledger or {}
    by_key: dict[str, list[RowFailure]] = {}
    for number, stored in enumerate(failures):
        if stored.failure.stage not in DELIVERY_STAGES:
            continue  # status-sync and write-back: the invoice is in AppZen
        key = stored.failure.source_key or f"{NO_KEY}{number + 1})"
        by_key.setdefault(key, []).append(stored.failure)
    entries = [_entry(key, group, ledger.get(key)) for key, group in by_key.items()]
    entries += [
        _entry(entry.invoice_id, entry.reasons, entry)
        for entry in carried
        if entry.invoice_id not in by_key
    ]
    return entries


def _entry(key: str, failures: Sequence[RowFailure], known: LedgerEntry | None) -> InvoiceEntry:
    return InvoiceEntry(
        key=key,
        facts=known.facts if known else InvoiceFacts(),
        state=known.state if known else "",
        runs_seen=known.runs_seen if known else 1,
        first_seen=known.first_seen_at.strftime("%Y-%m-%d") if known else "",
        problems=collapse(failures),
    )


def amount_at_risk(entries: Sequence[InvoiceEntry]) -> tuple[list[tuple[str, Decimal]], int]:
    """``([(currency, total)…] largest first, invoices whose total or currency is unknown)``."""
    sums: dict[str, Decimal] = {}
    unknown = 0
    for entry in entries:
        amount, currency = entry.facts.total_amount, entry.facts.currency
        try:
            value = Decimal(amount) if amount is not None else None
        except InvalidOperation:
            value = None
        if value is None or not currency:
            unknown += 1
            continue
        sums[currency] = sums.get(currency, Decimal(0)) + value
    return sorted(sums.items(), key=lambda item: (-item[1], item[0])), unknown


def by_reason(entries: Sequence[InvoiceEntry]) -> list[tuple[str, list[InvoiceEntry]]]:
    """The entries grouped by their reason, the largest group first."""
    groups: dict[str, list[InvoiceEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.reason, []).append(entry)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
