"""Pre-flight checks in a real sync: an error stops its invoice (counted, reported, exit code 1,
retried by retry-failed); a warning travels with the sent invoice into the report, and is no
failure (not counted, not retried)."""

from __future__ import annotations

from pathlib import Path

from pipeline.devkit.sandbox import SandboxServer
from pipeline.load.sync import SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import run_sync
from tests.mapping.conftest import COLUMNS, MINIMAL, row

MAPPING = MINIMAL.replace("path: x.csv", "path: exports/ap.csv") + (
    "checks: {line_amount: warning}\n"
)


def _project(tmp_path: Path) -> Path:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "exports").mkdir()
    rows = [
        row("A1"),  # clean
        row("A2", qty="3"),  # 3 x 5.00 is not 10.00: warned, sent
        row("A3", date="2099-01-01"),  # years ahead: refused
    ]
    lines = [",".join(COLUMNS), *(",".join(str(cell) for cell in r) for r in rows)]
    (tmp_path / "exports" / "ap.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = tmp_path / "mappings" / "checked.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return mapping


def test_errors_stop_their_invoice_and_warnings_travel_with_the_sent_one(
    settings: Settings, store: StagingStore, sandbox: SandboxServer, tmp_path: Path
) -> None:
    summary = run_sync(SyncOptions(_project(tmp_path)), settings, store)
    assert set(sandbox.state.invoices()) == {"A1", "A2"}
    assert summary.counts["failed_check"] == 1
    assert summary.counts["check_warnings"] == 1
    assert summary.failed == 1
    assert summary.run_id is not None
    stored = store.failures_for_run(summary.run_id)
    rows = {(s.failure.source_key, s.failure.stage, s.failure.rule) for s in stored}
    assert rows == {
        ("A2", "warning", "check:line_amount"),
        ("A3", "check", "check:invoice_date"),
    }
    assert store.failed_invoice_ids("checked", summary.run_id) == {"A3"}  # warnings: not retried
    # An invoice a check stopped was never sent: it stays on the AP worklist until delivered.
    assert store.ledger.open_keys("checked") == {"A3"}


def test_a_supplier_invoice_number_sent_in_an_earlier_run_is_warned(
    settings: Settings, store: StagingStore, sandbox: SandboxServer, tmp_path: Path
) -> None:
    mapping = _project(tmp_path)
    mapping.write_text(MAPPING.replace("invoice_number: inv", "invoice_number: desc"))
    export = tmp_path / "exports" / "ap.csv"
    header = ",".join(COLUMNS)
    first = ",".join(str(cell) for cell in row("A1", desc="INV-0042"))
    export.write_text(f"{header}\n{first}\n", encoding="utf-8")
    run_sync(SyncOptions(mapping), settings, store)
    again = ",".join(str(cell) for cell in row("A9", desc="inv 42"))  # another key, same number
    other = ",".join(str(cell) for cell in row("B1", desc="inv 42", sup="S2"))
    export.write_text(f"{header}\n{again}\n{other}\n", encoding="utf-8")  # as night 2 reads
    summary = run_sync(SyncOptions(mapping), settings, store)
    assert set(sandbox.state.invoices()) == {"A1", "A9", "B1"}  # a warning: sent
    assert summary.run_id is not None
    (warning,) = [s.failure for s in store.failures_for_run(summary.run_id)]
    assert (warning.source_key, warning.stage, warning.rule) == (
        "A9",
        "warning",
        "check:duplicate_number",
    )
    assert warning.message == (
        "the same supplier invoice number was sent before as invoice 'A1' (staging history, "
        "another key): a duplicate payment?"
    )
