"""``appzen-etl failures``: the open-failures ledger, listed and dismissed (one entry per invoice).

An invoice is on the ledger from its first failure to reach AppZen until it is delivered, gone
from the source (found so by ``retry-failed``), or dismissed here with a reason.
"""

from __future__ import annotations

import getpass
import socket
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import render
from pipeline.cli.render import console
from pipeline.cli.runs import OptionError, operator_errors
from pipeline.cli.runs import load_operator_settings as _settings
from pipeline.cli.runs import open_store as _store
from pipeline.redact import scrub

if TYPE_CHECKING:
    from pipeline.staging.ledger import Dismissal, LedgerEntry, LedgerState

failures_app = typer.Typer(
    help="The open-failures ledger: every invoice that has not reached AppZen yet, one entry "
    "each, until it is delivered, gone from the source, or dismissed with a reason.\n\n"
    "Example: [bold]appzen-etl failures list[/]",
    no_args_is_help=True,
)

MappingFilter = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        "-m",
        help="Only this mapping (a file, or a name as for sync); default: every mapping.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (automation).")
]
STATES: tuple[LedgerState, ...] = ("open", "dismissed", "delivered", "gone")
OPEN: tuple[LedgerState, ...] = ("open",)


@failures_app.command("list")
@operator_errors
def list_failures(
    mapping: MappingFilter = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Closed entries too (delivered, gone, dismissed).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """List the invoices not in AppZen yet, oldest first.

    Each with its invoice number, supplier, date, total, stage, first seen, runs seen and the
    latest reasons.

    Example: [bold]appzen-etl failures list -m mappings/sample_erp.yaml[/]
    """
    store = _store(_settings())
    states = STATES if show_all else OPEN
    found = store.ledger.entries(_mapping_name(mapping), states)
    if as_json:
        render.print_json({"failures": [entry_json(entry) for entry in found]})
        return
    if not found:
        console.out("no open failures: every invoice that failed has been delivered or closed")
        return
    console.print(ledger_table(found))


@failures_app.command("dismiss")
@operator_errors
def dismiss(
    keys: Annotated[list[str], typer.Argument(help="ERP invoice keys (AppZen invoice_id).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Why it needs no fix (kept with who and when).")
    ],
    mapping: MappingFilter = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who dismisses (default: user@host).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Close open failures that need no fix, with a reason (kept with who and when).

    All or none: a key that is not open (or open under several mappings: give -m) dismisses
    nothing (exit code 2).

    Example: [bold]appzen-etl failures dismiss INV-1042 --reason "cancelled in the ERP"[/]
    """
    if not reason.strip():
        raise OptionError("failures dismiss: --reason must say why (it is kept with the entry)")
    store = _store(_settings())
    who = by or f"{getpass.getuser()}@{socket.gethostname()}"
    outcome = store.ledger.dismiss(_mapping_name(mapping), keys, reason=reason.strip(), by=who)
    if outcome.refused:
        raise OptionError(_refusal(outcome))
    if as_json:
        dismissed = [{"mapping": m, "invoice_id": k} for m, k in outcome.dismissed]
        render.print_json({"dismissed": dismissed, "by": who, "reason": reason.strip()})
        return
    for found_mapping, key in outcome.dismissed:
        console.out(scrub(f"dismissed {key} ({found_mapping}) by {who}: {reason.strip()}"))


def _mapping_name(mapping: Path | None) -> str | None:
    if mapping is None:
        return None
    from pipeline.mapping.loader import load_mapping  # noqa: PLC0415 - heavy: only when given

    return load_mapping(mapping).name


def _refusal(outcome: Dismissal) -> str:
    parts = [f"{key}: no entry in the ledger" for key in outcome.unknown]
    parts += [f"{key}: {state} ({mapping}), not open" for mapping, key, state in outcome.not_open]
    parts += [
        f"{key}: open under {', '.join(mappings)}; name one with -m"
        for key, mappings in outcome.ambiguous
    ]
    return "failures dismiss: nothing dismissed; " + "; ".join(parts)


def entry_json(entry: LedgerEntry) -> dict[str, object]:
    """A ledger entry as JSON-ready data."""
    facts = entry.facts
    return {
        "mapping": entry.mapping,
        "invoice_id": entry.invoice_id,
        "state": entry.state,
        "stage": entry.stage,
        "invoice_number": facts.invoice_number,
        "supplier_id": facts.supplier_id,
        "supplier_name": facts.supplier_name,
        "invoice_date": facts.invoice_date,
        "total_amount": facts.total_amount,
        "currency": facts.currency,
        "first_seen_at": _iso(entry.first_seen_at),
        "last_seen_at": _iso(entry.last_seen_at),
        "first_run_id": entry.first_run_id,
        "last_run_id": entry.last_run_id,
        "runs_seen": entry.runs_seen,
        "closed_at": _iso(entry.closed_at),
        "dismissed_by": entry.dismissed_by,
        "dismissed_reason": entry.dismissed_reason,
        "reasons": [render.failure_json(failure) for failure in entry.reasons],
    }


def ledger_table(found: list[LedgerEntry]) -> Table:
    """One line per invoice: who, how much, since when, why."""
    table = Table(title=f"{len(found)} invoices not in AppZen")
    columns = ("key", "invoice no", "supplier", "date", "total", "stage", "since", "runs", "why")
    for column in columns:
        table.add_column(column, overflow="fold")
    from pipeline.report.cells import visible  # noqa: PLC0415 - heavy package; rows exist now
    from pipeline.report.invoices import collapse  # noqa: PLC0415

    for entry in found:
        facts = entry.facts
        supplier = " ".join(x for x in (facts.supplier_id, facts.supplier_name) if x)
        total = " ".join(x for x in (facts.total_amount, facts.currency) if x)
        why = "; ".join(problem.brief for problem in collapse(entry.reasons)) or entry.stage
        if entry.state != "open":
            why = f"[{entry.state}] {entry.dismissed_reason or ''} {why}".strip()
        cells = (
            entry.invoice_id,
            facts.invoice_number,
            supplier,
            facts.invoice_date,
            total,
            entry.stage,
            entry.first_seen_at.strftime("%Y-%m-%d %H:%M"),
            str(entry.runs_seen),
            why,
        )
        table.add_row(*(Text(visible(scrub(cell or ""))) for cell in cells))  # data, not markup
    return table


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
