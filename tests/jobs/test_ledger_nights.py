"""The open-failures ledger over three nights, read each morning as the AP analyst reads it.

Night 1: the sample ERP's dirty invoices fail mapping, four more are made bad (A: a bad date,
B: an unknown currency, E: a bad date, F: a bad date) and AppZen refuses every invoice of one
supplier. Day 1: E is dismissed with a reason. Night 2 (incremental sync): A is fixed with its
``updated_at`` moved, B is fixed *without* (the incremental sync cannot see it), F is deleted
from the ERP, G breaks (``updated_at`` moved), AppZen now knows the supplier. Night 3: the sync,
then ``retry-failed`` re-reads every open failure: B is delivered, F is gone, the supplier's
invoices are delivered; the generated dirty ones and G stay open, seen in one more run.
"""

from __future__ import annotations

import asyncio
import csv
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.devkit.sample_erp import GenerationReport
from pipeline.devkit.sandbox import SandboxServer
from pipeline.jobs import retry as retry_job
from pipeline.jobs import sync as sync_job
from pipeline.load.sync import SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.ledger import LedgerEntry
from pipeline.summary import RunSummary

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "sample_erp.yaml"
NAME = "sample_erp"


@dataclass
class Erp:
    """The sample ERP, changed the way an AP clerk changes it."""

    url: str
    report: GenerationReport

    def execute(self, sql: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                result = conn.execute(sa.text(sql), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def set(self, document_no: str, column: str, value: object, *, touch: bool) -> None:
        """Change one header column; ``touch`` moves ``updated_at`` past every earlier one."""
        later = self.report.last_updated_at + timedelta(days=1)
        moved = ", updated_at = :later" if touch else ""
        self.execute(
            f"UPDATE erp_invoice SET {column} = :value{moved} WHERE document_no = :doc",
            value=value,
            later=later,
            doc=document_no,
        )

    def delete(self, document_no: str) -> None:
        key = "(SELECT invoice_key FROM erp_invoice WHERE document_no = :doc)"
        self.execute(f"DELETE FROM erp_invoice_line WHERE invoice_key = {key}", doc=document_no)
        self.execute("DELETE FROM erp_invoice WHERE document_no = :doc", doc=document_no)


def open_entries(store: StagingStore) -> dict[str, LedgerEntry]:
    return {entry.invoice_id: entry for entry in store.ledger.entries(NAME)}


def closed_states(store: StagingStore) -> dict[str, str]:
    closed = store.ledger.entries(NAME, ("delivered", "gone", "dismissed"))
    return {entry.invoice_id: entry.state for entry in closed}


def nightly(settings: Settings, store: StagingStore) -> RunSummary:
    return asyncio.run(sync_job.run(settings, store, SyncOptions(MAPPING)))


def test_three_nights_of_the_ledger(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    erp: tuple[str, GenerationReport],
) -> None:
    source = Erp(*erp)
    dirty = set(source.report.dirty_ids)
    rows = source.execute(
        "SELECT document_no, supplier_id, supplier_invoice_no FROM erp_invoice ORDER BY invoice_key"
    )
    clean = [row for row in rows if row[0] not in dirty and row[1] is not None]
    refused_supplier = clean[0][1]
    refused = {str(row[0]) for row in clean if row[1] == refused_supplier}
    others = [str(row[0]) for row in clean if row[1] != refused_supplier]
    a, b, e, f, g = others[:5]
    numbers = {str(row[0]): str(row[2]) for row in rows}

    # --- night 1 ---------------------------------------------------------------------------
    for doc, column, value in ((a, "invoice_date_text", "31.02.2024"), (b, "currency", "XXY")):
        source.set(doc, column, value, touch=False)
    for doc in (e, f):
        source.set(doc, "invoice_date_text", "32.01.2024", touch=False)
    sandbox.state.configure(unknown_suppliers=[str(refused_supplier)])
    night1 = nightly(settings, store)

    morning1 = open_entries(store)
    assert set(morning1) == dirty | refused | {a, b, e, f}
    assert {entry.runs_seen for entry in morning1.values()} == {1}
    assert {entry.first_run_id for entry in morning1.values()} == {night1.run_id}
    assert morning1[a].stage == "mapping"
    assert morning1[a].facts.invoice_number == numbers[a]  # read, though the date was not
    assert morning1[a].facts.invoice_date is None
    assert morning1[a].facts.total_amount is not None
    assert morning1[b].facts.invoice_number == numbers[b]
    assert morning1[b].facts.currency is None  # the unknown currency is not a fact
    assert any("date" in reason.message for reason in morning1[a].reasons)
    some_refused = morning1[min(refused)]
    assert some_refused.stage == "appzen"
    assert some_refused.facts.supplier_id == str(refused_supplier)
    assert some_refused.facts.total_amount is not None
    assert any("not a supplier" in reason.message for reason in some_refused.reasons)

    report1 = Path(night1.reports["html"]).read_text("utf-8")
    assert f"{len(morning1)} invoices not in AppZen" in report1
    assert 'class="status-amber">succeeded with' in report1
    assert "Amount at risk: " in report1
    currency_problem = re.search(r"is not an? [^<]*<span class=\"n\">(\d+) fields: ", report1)
    assert currency_problem is not None
    assert int(currency_problem[1]) >= 3  # one cause, one line

    # --- day 1: a dismissal ----------------------------------------------------------------
    dismissal = store.ledger.dismiss(NAME, [e], reason="cancelled in the ERP", by="ap@test")
    assert dismissal.dismissed == ((NAME, e),)
    assert not store.ledger.dismiss(NAME, [e, "NO-SUCH"], reason="x", by="ap@test").dismissed

    # --- night 2 ---------------------------------------------------------------------------
    source.set(a, "invoice_date_text", "01.02.2024", touch=True)  # fixed, updated_at moved
    source.set(b, "currency", "EUR", touch=False)  # fixed without moving updated_at
    source.delete(f)
    source.set(g, "invoice_date_text", "00.00.0000", touch=True)
    sandbox.state.configure(unknown_suppliers=[])
    night2 = nightly(settings, store)

    morning2 = open_entries(store)
    assert set(morning2) == dirty | refused | {b, f, g}
    with Path(night2.reports["csv"]).open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert {line["source key"] for line in lines} == set(morning2)  # earlier failures stay
    assert {line["invoice number"] for line in lines if line["source key"] == b} == {numbers[b]}
    assert f"{len(morning2)} invoices not in AppZen" in Path(night2.reports["html"]).read_text()
    assert closed_states(store) == {a: "delivered", e: "dismissed"}
    assert (morning2[g].first_run_id, morning2[g].runs_seen) == (night2.run_id, 1)
    assert morning2[b].runs_seen == 1  # the incremental sync did not read it again
    dismissed = store.ledger.entries(NAME, ("dismissed",))[0]
    assert (dismissed.dismissed_by, dismissed.dismissed_reason) == (
        "ap@test",
        "cancelled in the ERP",
    )
    assert dismissed.closed_at is not None

    # --- night 3 ---------------------------------------------------------------------------
    nightly(settings, store)
    scope = retry_job.scope(store, MAPPING)
    assert scope.keys == frozenset(morning2)  # every open failure; the dismissed one is not
    night3 = asyncio.run(retry_job.run(settings, store, scope))

    morning3 = open_entries(store)
    assert set(morning3) == dirty | {g}
    assert {entry.runs_seen for entry in morning3.values()} == {2}
    assert {entry.last_run_id for entry in morning3.values()} == {night3.run_id}
    assert closed_states(store) == {
        a: "delivered",
        b: "delivered",
        e: "dismissed",
        f: "gone",
        **dict.fromkeys(refused, "delivered"),
    }
    assert sandbox.state.invoices()[b].payload["total_amount"]["currency"] == "EUR"


def test_an_invoice_fixed_back_to_what_appzen_has_closes_as_delivered(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    erp: tuple[str, GenerationReport],
) -> None:
    """Delivered, then broken (AppZen keeps the old version), then fixed back: the payload is
    unchanged since AppZen's acknowledgement, nothing is sent, and the entry closes."""
    source = Erp(*erp)
    doc = next(
        str(row[0])
        for row in source.execute("SELECT document_no FROM erp_invoice ORDER BY invoice_key")
        if str(row[0]) not in source.report.dirty_ids
    )
    nightly(settings, store)
    (before,) = source.execute(
        "SELECT invoice_date_text FROM erp_invoice WHERE document_no = :doc", doc=doc
    )
    source.set(doc, "invoice_date_text", "31.02.2024", touch=True)
    nightly(settings, store)
    assert doc in open_entries(store)

    source.set(doc, "invoice_date_text", before[0], touch=False)
    summary = asyncio.run(retry_job.run(settings, store, retry_job.scope(store, MAPPING)))

    assert summary.counts["unchanged"] == 1
    assert doc not in open_entries(store)
    assert closed_states(store)[doc] == "delivered"
