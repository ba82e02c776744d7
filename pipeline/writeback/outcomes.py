"""AppZen outcomes as the write-back sees them: from an audit (``GET …/audit-results``) or from a
customer's exported outcomes CSV, and the failed rows when one cannot be read.

The outcomes file is CSV with a header: ``invoice_id`` or ``uuid`` (at least one per row),
``state`` (``APPROVED`` / ``REJECTED``, any case; AppZen's ``Approved``, ``Rejected`` and
``PROCESSED`` too), optional ``reason`` (a rule code or text the CRM reason map looks up) and
optional ``mapping`` (when an invoice id is staged under several mappings).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipeline.appzen.models import AuditSummary, SearchHit
from pipeline.extract.csv import CsvSource
from pipeline.failures import RowFailure, shorten
from pipeline.staging.audit import AuditOutcome, AuditStore, Outcome

RISK_ORDER = {"HIGH": 3, "MEDIUM": 2, "LOW": 1}
_STATES: dict[str, Outcome] = {
    "approved": "APPROVED",
    "processed": "APPROVED",
    "rejected": "REJECTED",
}
FILE_HINT = "fix the outcomes file row, then run the write-back again with it"


def outcome_state(text: str | None) -> Outcome | None:
    """``APPROVED`` / ``REJECTED`` for AppZen's or an export's spelling; ``None`` otherwise."""
    return _STATES.get((text or "").strip().casefold())


def parse_time(text: str | None) -> datetime | None:
    """An AppZen timestamp (``2021-06-16T18:53:38.603Z``) as an aware UTC datetime."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_audit(invoice_id: str, hit: SearchHit, audit: AuditSummary) -> AuditOutcome | None:
    """The outcome of an audit (its ``status``, else the search's status); ``None`` while AppZen
    has not decided. The reason is the riskiest rule's code (for a rejection)."""
    outcome = outcome_state(audit.status)
    if outcome is None and hit.appzen_invoice_status == "REJECTED":
        outcome = "REJECTED"
    if outcome is None:
        return None
    rules = tuple(
        {"rule_code": r.rule_code, "risk_level": r.risk_level, "risk_message": r.risk_message}
        for r in audit.rules
    )
    riskiest = max(audit.rules, key=lambda r: RISK_ORDER.get(r.risk_level or "", 0), default=None)
    rejected = outcome == "REJECTED" and riskiest is not None
    return AuditOutcome(
        invoice_id=invoice_id,
        outcome=outcome,
        uuid=hit.appzen_uuid,
        appzen_status=hit.appzen_invoice_status,
        risk_level=audit.risk_level,
        reason=riskiest.rule_code if rejected and riskiest is not None else None,
        message=riskiest.risk_message if rejected and riskiest is not None else None,
        rules=rules,
        source="poll",
        appzen_updated_at=parse_time(hit.last_appzen_update_time),
    )


@dataclass(frozen=True, slots=True)
class FileRow:
    """One readable row of an outcomes file."""

    location: str
    invoice_id: str | None
    uuid: str | None
    outcome: Outcome
    reason: str | None
    mapping: str | None


@dataclass(slots=True)
class Imported:
    """Outcomes read from a file, by mapping, and the rows that could not be used."""

    outcomes: dict[str, list[AuditOutcome]]
    failures: list[RowFailure]


def read_outcomes_file(path: Path) -> tuple[list[FileRow], list[RowFailure]]:
    """Every row of an outcomes CSV, or a failed row naming the file:row and the fix."""
    source = CsvSource(str(path), base_dir=Path.cwd())
    rows: list[FileRow] = []
    failures: list[RowFailure] = []
    for location, cells in _records(source):
        row = _row(location, cells, failures)
        if row is not None:
            rows.append(row)
    return rows, failures


def _records(source: CsvSource) -> Iterator[tuple[str, dict[str, str]]]:
    for chunk in source.chunks({}):
        for index, record in enumerate(chunk.records()):
            cells = {
                name.strip().casefold(): str(value or "").strip() for name, value in record.items()
            }
            yield chunk.location(index), cells


def _row(location: str, cells: dict[str, str], failures: list[RowFailure]) -> FileRow | None:
    invoice_id, uuid = cells.get("invoice_id") or None, cells.get("uuid") or None
    outcome = outcome_state(cells.get("state"))
    problem = None
    if invoice_id is None and uuid is None:
        problem = ("key", "invoice_id", "a row needs an invoice_id or a uuid")
    elif outcome is None:
        state = cells.get("state", "")
        problem = ("state", "state", f"state {state!r} is not APPROVED or REJECTED")
    if problem is not None:
        rule, column, message = problem
        failures.append(
            RowFailure(
                source_key=invoice_id or uuid,
                source_location=location,
                stage="audit",
                rule=f"outcomes_file:{rule}",
                message=message,
                source_column=column,
                value=shorten(cells.get(column)),
                hint=FILE_HINT,
            )
        )
        return None
    assert outcome is not None
    reason = cells.get("reason") or None
    return FileRow(location, invoice_id, uuid, outcome, reason, cells.get("mapping") or None)


def resolve(rows: Sequence[FileRow], audit: AuditStore, mappings: Sequence[str]) -> Imported:
    """Each row's staged invoice (by uuid, else by invoice id among ``mappings``)."""
    by_uuid = audit.invoices_by_uuid([r.uuid for r in rows if r.uuid])
    by_key = audit.mappings_of([r.invoice_id for r in rows if r.invoice_id], mappings)
    imported = Imported({}, [])
    for row in rows:
        places = by_uuid.get(row.uuid, []) if row.uuid else []
        if not places and row.invoice_id:
            places = [(m, row.invoice_id) for m in by_key.get(row.invoice_id, [])]
        if row.mapping is not None:
            places = [(m, key) for m, key in places if m == row.mapping]
        if len(places) != 1:
            imported.failures.append(_unresolved(row, len(places)))
            continue
        mapping, invoice_id = places[0]
        outcome = AuditOutcome(
            invoice_id=invoice_id,
            outcome=row.outcome,
            uuid=row.uuid,
            reason=shorten(row.reason, 255),
            message=row.reason,
            source="file",
        )
        imported.outcomes.setdefault(mapping, []).append(outcome)
    return imported


def _unresolved(row: FileRow, found: int) -> RowFailure:
    key = row.uuid or row.invoice_id
    if found == 0:
        message = f"no staged invoice has {'uuid' if row.uuid else 'invoice_id'} {key!r}"
        hint = "check the id: only invoices this pipeline sent to AppZen can be written back"
    else:
        message = f"invoice_id {key!r} is staged under {found} mappings"
        hint = "add a mapping column naming the mapping, or give the uuid"
    return RowFailure(
        source_key=row.invoice_id or row.uuid,
        source_location=row.location,
        stage="audit",
        rule="outcomes_file:unknown_invoice" if found == 0 else "outcomes_file:ambiguous",
        message=message,
        hint=hint,
        value=key,
    )
