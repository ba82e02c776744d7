"""Row 7: status-sync's own status read over 1,000,000 staged invoices on PostgreSQL.

The sample ERP (headers only: the read never touches lines) and staging share one PostgreSQL
schema. Staging is seeded as a full status-sync leaves it: every invoice acknowledged, its ERP
status and error recorded as told to AppZen (COPY, straight from the ERP's own columns). The
sandbox knows the uuids of the invoices that will change (a push to any other would be a 404).
The mapping is the shipped sample mapping with its status read (``sql/sample_erp/status.sql``)
but without ``watermark_column``: every status is read, keyed, in chunks (the full read an ERP
without a change time needs, the worst case). Then 1 % of the invoices change: half get a
payment (``erp_payment``; ``updated_at`` unmoved), half a status one step on (``updated_at``
moved). The figure is one standalone status-sync job (read, compare with staging, record, push)
in wall seconds and this process's CPU seconds; it must push exactly the changed invoices, each
once, all accepted. Baseline: the same job before the change (a full read, nothing to push).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.inputs import REPO, pg_schema, sample_erp
from benchmarks.report import Figure
from benchmarks.sandbox import SandboxProcess
from pipeline.devkit.sample_erp import invoice, payment
from pipeline.jobs import status as status_job
from pipeline.settings import Settings, load_settings
from pipeline.staging import StagingStore
from pipeline.staging.claims import dump_json
from pipeline.summary import RunSummary

TARGET_S = 60.0
CHANGED_EVERY = 100  # 1 %
_COLUMNS = (
    "mapping", "invoice_id", "state", "payload_hash", "acked_hash", "uuid", "appzen_status",
    "attempts", "send_count", "resent_after_crash", "erp_status", "erp_error", "pushed_status",
    "pushed_error", "pushed_at", "push_count", "push_pending", "created_at", "updated_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Timed:
    """A status-sync job's summary, wall seconds and this process's CPU seconds."""

    summary: RunSummary
    seconds: float
    cpu_seconds: float

    @property
    def pushed(self) -> int:
        """Statuses pushed (CREATED and ERROR)."""
        return int(self.summary.counts["pushed"] + self.summary.counts["pushed_error"])


def row7(folder: Path, invoices: int, say: Callable[[str], None] = print) -> Figure:
    """The status read over ``invoices`` staged invoices with 1 % changed (module docstring)."""
    with pg_schema() as url:
        say(f"row 7: sample ERP of {invoices:,} invoice headers (PostgreSQL)")
        sample_erp(url, invoices, lines=False)
        mapping = _full_read_mapping(folder)
        with SandboxProcess() as sandbox:
            settings = _settings(sandbox.base_url, url, folder)
            with StagingStore.open(url) as store:
                say(f"row 7: staging {invoices:,} invoices as told (COPY)")
                staged = _stage_as_told(url)
                chosen = _chosen(url)
                _set_uuids(url, sandbox.seed(sorted(chosen)))
                say("row 7: status-sync with nothing changed (baseline)")
                idle = _status_sync(settings, store, mapping)
                changed = _change(url, chosen)
                before = sandbox.counts()
                first = len(sandbox.pushes())
                say(f"row 7: status-sync with {len(changed):,} changed")
                run = _status_sync(settings, store, mapping)
                answered = sandbox.counts().since(before)
                pushed = Counter(sandbox.pushes()[first:])
                again = _status_sync(settings, store, mapping)
    return _figure(staged, changed, idle, run, again, answered.responses, pushed)


def _figure(
    staged: int,
    changed: dict[str, str],
    idle: Timed,
    run: Timed,
    again: Timed,
    responses: dict[int, int],
    pushed: Counter[str],
) -> Figure:
    exact = set(pushed) == set(changed) and set(pushed.values()) == {1}
    accepted = responses.get(200, 0)
    met = exact and accepted == len(changed) == run.pushed and again.pushed == 0
    return Figure(
        row="7",
        what=f"Status read over {staged:,} staged invoices (PostgreSQL, full keyed read), "
        f"{len(changed):,} (1 %) changed, half without updated_at moving",
        measured=f"{sum(pushed.values()):,} pushes ({accepted:,} accepted, exactly the changed), "
        f"{run.seconds:.1f} s ({run.cpu_seconds:.1f} s CPU)",
        baseline=f"nothing changed: {idle.pushed} pushes, {idle.seconds:.1f} s "
        f"({idle.cpu_seconds:.1f} s CPU)",
        ratio=run.seconds / idle.seconds if idle.seconds else None,
        target=f"pushes = changed, < {TARGET_S:.0f} s",
        met=met and run.seconds < TARGET_S,
        detail={
            "staged": staged,
            "changed": len(changed),
            "pushes": sum(pushed.values()),
            "exactly_the_changed": exact,
            "accepted": accepted,
            "responses": responses,
            "seconds": run.seconds,
            "cpu_seconds": run.cpu_seconds,
            "idle_seconds": idle.seconds,
            "idle_cpu_seconds": idle.cpu_seconds,
            "rerun_pushes": again.pushed,
            "counts": dict(run.summary.counts),
        },
    )


def _settings(base_url: str, url: str, folder: Path) -> Settings:
    return load_settings(
        appzen_base_url=base_url,
        appzen_sandbox=True,  # base_url: the benchmark's own sandbox on a free port
        erp_database_url=url,
        staging_database_url=url,
        reports_dir=folder / "reports",
        appzen_rate_limit=10_000,
        appzen_max_concurrency=32,
        appzen_read_timeout=30,
    )


def _full_read_mapping(folder: Path) -> Path:
    """The shipped sample mapping and its queries in ``folder``, its status read made full."""
    sql = folder / "sql" / "sample_erp"
    sql.mkdir(parents=True)
    for name in ("extract.sql", "status.sql"):
        shutil.copy(REPO / "sql" / "sample_erp" / name, sql / name)
    text = (REPO / "mappings" / "sample_erp.yaml").read_text(encoding="utf-8")
    lines = [
        line for line in text.splitlines() if "watermark_column: status_changed_at" not in line
    ]
    (folder / "mappings").mkdir()
    path = folder / "mappings" / "sample_erp.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _status_sync(settings: Settings, store: StagingStore, mapping: Path) -> Timed:
    started, cpu = time.perf_counter(), time.process_time()
    options = status_job.StatusOptions(mapping)
    summary = asyncio.run(status_job.run(settings, store, options))
    if summary.fatal:
        raise RuntimeError(f"benchmark status-sync stopped: {summary.fatal}")
    return Timed(summary, time.perf_counter() - started, time.process_time() - cpu)


def _stage_as_told(url: str) -> int:
    """Every ERP invoice staged as acknowledged, its current status as pushed (COPY)."""
    now = datetime.now(UTC)
    columns = (
        invoice.c.invoice_key,
        invoice.c.document_no,
        invoice.c.status,
        invoice.c.erp_error_message,
        invoice.c.erp_error_status,
        invoice.c.erp_error_exception,
    )
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as reader:
            rows = reader.execute(sa.select(*columns)).all()
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            copy_sql = f"COPY invoices ({', '.join(_COLUMNS)}) FROM STDIN"
            with cursor.copy(copy_sql) as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(_told(row, now))
            raw.commit()
            cursor.execute("ANALYZE invoices")  # as autovacuum would after a bulk load
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return len(rows)


def _told(row: sa.Row[tuple[object, ...]], now: datetime) -> tuple[object, ...]:
    key, number, status, message, code, exception = row
    parts = {"message": message, "status": code, "exception": exception}
    error = dump_json({k: v for k, v in parts.items() if v is not None}) if message else None
    uuid = f"bench-{key}"
    return (
        "sample_erp", number, "sent", "seed", "seed", uuid, "CREATED", 1, 1, 0,
        status, error, status, error, now, 1, False, now, now,
    )  # fmt: skip


def _chosen(url: str) -> dict[str, tuple[int, str]]:
    """Every hundredth invoice: document number → (key, status)."""
    query = sa.select(invoice.c.document_no, invoice.c.invoice_key, invoice.c.status).where(
        (invoice.c.invoice_key % CHANGED_EVERY) == 0
    )
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {number: (key, status) for number, key, status in conn.execute(query)}
    finally:
        engine.dispose()


def _set_uuids(url: str, uuids: dict[str, str]) -> None:
    """Staging's uuid of each chosen invoice: the one the sandbox handed out."""
    engine = sa.create_engine(url, poolclass=NullPool)
    stmt = sa.text(
        "UPDATE invoices SET uuid = :uuid WHERE mapping = 'sample_erp' AND invoice_id = :key"
    )
    try:
        with engine.begin() as conn:
            conn.execute(stmt, [{"uuid": u, "key": k} for k, u in uuids.items()])
    finally:
        engine.dispose()


def _change(url: str, chosen: dict[str, tuple[int, str]]) -> dict[str, str]:
    """Half of the chosen (unpaid ones) get a payment, the others a status one step on with
    ``updated_at`` moved; the new status by document number."""
    steps = {"PARKED": "APPROVED", "APPROVED": "POSTED", "POSTED": "PAID", "PAID": "PARKED"}
    engine = sa.create_engine(url, poolclass=NullPool)
    moment = datetime(2030, 1, 1) + timedelta(minutes=1)
    changed: dict[str, str] = {}
    payments, steps_done = [], []
    for number, (key, status) in sorted(chosen.items()):
        if len(payments) < len(chosen) // 2 and status != "PAID":
            payments.append(
                {
                    "payment_id": key,
                    "invoice_key": key,
                    "amount": 1,
                    "paid_on": moment.date(),
                    "recorded_at": moment,
                }
            )
            changed[number] = "PAID"
        else:
            steps_done.append({"p_key": key, "p_status": steps[status]})
            changed[number] = steps[status]
    stmt = (
        invoice.update()
        .where(invoice.c.invoice_key == sa.bindparam("p_key"))
        .values(status=sa.bindparam("p_status"), updated_at=moment)
    )
    try:
        with engine.begin() as conn:
            conn.execute(payment.insert(), payments)
            conn.execute(stmt, steps_done)
    finally:
        engine.dispose()
    return changed
