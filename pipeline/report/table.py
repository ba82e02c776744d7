"""The failed-row table: its columns, one plain row per failure, groups and counts by stage/rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from pipeline.failures import InvoiceFacts
from pipeline.report.cells import cell
from pipeline.report.hints import fix_hint
from pipeline.report.voices import ap_hint, author_hint
from pipeline.staging.ledger import LedgerEntry
from pipeline.staging.records import StoredFailure

COLUMNS: Final = (
    "run id",
    "stage",
    "rule",
    "source key",
    "invoice number",
    "supplier id",
    "supplier name",
    "invoice date",
    "total amount",
    "currency",
    "source location",
    "field path",
    "source column",
    "offending value",
    "message",
    "fix hint",
    "fix in the ERP (AP)",
    "fix in the mapping (author)",
    "HTTP status",
    "error code",
    "x-correlation-id",
    "attempts",
    "first seen",
    "last seen",
)
"""The report's columns, in order (the keys of every :func:`report_rows` row)."""

STAGES: Final = (
    "extract",
    "mapping",
    "validation",
    "check",
    "appzen",
    "retries_exhausted",
    "status_sync",
    "warning",
)

STAGE_TITLES: Final[dict[str, str]] = {
    "extract": "Extract: the source row could not be read",
    "mapping": "Mapping: a source value did not convert",
    "validation": "Validation: the mapped invoice breaks AppZen's schema",
    "check": "Pre-flight check: the invoice fails an AP check (not sent)",
    "warning": "Warning: an AP check found something; the invoice was sent",
    "appzen": "AppZen rejected the invoice",
    "retries_exhausted": "Retries exhausted: transient, the next run retries",
    "status_sync": "Status sync: AppZen refused the ERP status",
    "audit": "AppZen outcome: it could not be read (poll) or used (outcomes file)",
    "merchant": "Merchant platform: the invoice note could not be written",
    "crm": "CRM.COM: the invoice could not be rejected",
}


def utc_iso(moment: datetime | None) -> str:
    """``2024-05-01T06:00:00Z``; a naive datetime is taken as UTC; ``""`` for ``None``."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_row(stored: StoredFailure, facts: InvoiceFacts | None = None) -> dict[str, str]:
    """One failure as a row of cells (every text scrubbed, made visible and cut), with what
    ``facts`` name the invoice by."""
    f = stored.failure
    known = facts or InvoiceFacts()
    values: tuple[object, ...] = (
        stored.run_id,
        f.stage,
        f.rule,
        f.source_key,
        known.invoice_number,
        known.supplier_id,
        known.supplier_name,
        known.invoice_date,
        known.total_amount,
        known.currency,
        f.source_location,
        f.field_path,
        f.source_column,
        f.value,
        f.message,
        fix_hint(f),
        ap_hint(f),
        author_hint(f),
        f.http_status,
        f.error_code,
        f.correlation_id,
        f.attempts,
        utc_iso(stored.first_seen_at),
        utc_iso(stored.last_seen_at),
    )
    return {column: cell(value) for column, value in zip(COLUMNS, values, strict=True)}


def report_rows(
    failures: Sequence[StoredFailure], ledger: Mapping[str, LedgerEntry] | None = None
) -> list[dict[str, str]]:
    """The report table as plain rows keyed by :data:`COLUMNS` (safe text; not CSV-neutralised
    and not HTML-escaped: each writer does its own); ``ledger`` names the invoices by key."""
    known = ledger or {}
    return [report_row(stored, _facts(known, stored.failure.source_key)) for stored in failures]


def _facts(ledger: Mapping[str, LedgerEntry], key: str | None) -> InvoiceFacts | None:
    entry = ledger.get(key) if key is not None else None
    return entry.facts if entry is not None else None


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """The rows of one stage that broke one rule."""

    rule: str
    rows: tuple[dict[str, str], ...]


@dataclass(frozen=True, slots=True)
class StageGroup:
    """The rows of one stage, by rule (most frequent rule first)."""

    stage: str
    title: str
    count: int
    rules: tuple[RuleGroup, ...]


def _stage_order(stage: str) -> tuple[int, str]:
    return (STAGES.index(stage) if stage in STAGES else len(STAGES), stage)


def counts_by_stage(rows: Sequence[dict[str, str]]) -> list[tuple[str, int]]:
    """``(stage, rows)`` in pipeline order (extract … status_sync, then any other stage)."""
    counts = Counter(row["stage"] for row in rows)
    return [(stage, counts[stage]) for stage in sorted(counts, key=_stage_order)]


def counts_by_rule(rows: Sequence[dict[str, str]]) -> list[tuple[str, str, int]]:
    """``(stage, rule, rows)`` by stage in pipeline order, then the most frequent rule first."""
    counts = Counter((row["stage"], row["rule"]) for row in rows)
    order = sorted(counts, key=lambda pair: (_stage_order(pair[0]), -counts[pair], pair[1]))
    return [(stage, rule, counts[stage, rule]) for stage, rule in order]


def group_rows(rows: Sequence[dict[str, str]]) -> list[StageGroup]:
    """The rows grouped by stage, then by rule (rows keep their order inside a group)."""
    buckets: dict[tuple[str, str], list[dict[str, str]]] = {}
    for row in rows:
        buckets.setdefault((row["stage"], row["rule"]), []).append(row)
    by_rule = counts_by_rule(rows)
    groups = []
    for stage, count in counts_by_stage(rows):
        rules = tuple(
            RuleGroup(rule, tuple(buckets[stage, rule])) for s, rule, _ in by_rule if s == stage
        )
        groups.append(StageGroup(stage, STAGE_TITLES.get(stage, stage), count, rules))
    return groups
