"""StagingStore: the one object the poster, status-sync and reports use to read and write staging.

Every method is synchronous and runs in one transaction (a deadlock is retried whole), so a kill -9
at any moment leaves the database consistent. Timestamps are aware UTC datetimes from the injected
``now`` function.

State machine of an invoice (``invoices.state``)::

    (new key) ──claim_batch──► pending
    pending | failed_retryable | recreate ──acked──► sent
                                        ──400────► rejected
                                        ──retries exhausted──► failed_retryable
    sent     ──claim_batch sees payload_hash != acked_hash────► pending
    rejected ──claim_batch sees payload_hash != rejected_hash─► pending
    sent     ──mark_recreate (AppZen 404'd the uuid)──────────► recreate
    rejected ──claim_batch(force | retry_failed), then an outcome ──► sent | rejected | …

* Only an ``acked`` outcome writes ``sent`` (and only if the acked hash is still the row's latest
  payload; otherwise the row goes back to ``pending`` with the ack recorded).
* ``claim_batch`` decides ``unchanged`` (sent, hash == acked_hash), ``rejected_unchanged``
  (rejected, hash == rejected_hash, unless retry_failed), ``busy`` (another owner's live claim),
  else ``send`` with ``expect = create`` when staging has no uuid (or AppZen lost it) and
  ``update`` otherwise. ``force`` sends unchanged and rejected invoices too.
* Claims are orthogonal to states: ``claimed_by`` names the owner's run (``runs.owner``), which
  holds it while it lives (its heartbeat renews ``runs.lease_until``); a gone owner's claims are
  free at once (:mod:`pipeline.staging.owners`). ``record_outcomes`` releases claims,
  ``release_claims`` frees an aborted batch, ``reap_dead_runs`` a dead run's.
* ``resent_after_crash`` counts acks AppZen answered UPDATED when staging expected a create and
  the run that claimed the invoice before had died: its send went through, its acknowledgement was
  never recorded.
* ``push_in_doubt`` holds the status push that is out (written before the request, cleared with
  its outcome); one still there at the next status-sync was cut off by a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine

from pipeline.failures import InvoiceFacts, RowFailure
from pipeline.runtime.budget import DailyBudget
from pipeline.settings import Settings
from pipeline.staging import (
    budget,
    claims,
    history,
    ledger,
    migrations,
    outcomes,
    owners,
    reads,
    statuses,
)
from pipeline.staging.audit import AuditStore
from pipeline.staging.backfilldays import BackfillDay, backfill_days
from pipeline.staging.engine import READ_ONLY, backend_of, create_staging_engine
from pipeline.staging.errors import is_retryable, staging_error
from pipeline.staging.ledger import LedgerStore
from pipeline.staging.locks import NamedLock
from pipeline.staging.owners import DEFAULT_LEASE_S, Heartbeat, Owner
from pipeline.staging.ratememory import RateMemory, rate_memory
from pipeline.staging.records import (
    Decision,
    InvoiceRecord,
    InvoiceState,
    PushRecord,
    RunRecord,
    RunStatus,
    SendOutcome,
    StageItem,
    StatusCandidate,
    StatusRead,
    StoredFailure,
)

T = TypeVar("T")
log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
DEFAULT_BUSY_TIMEOUT_S = 30.0
_TRANSACTION_ATTEMPTS = 5


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def new_owner(label: str = "worker") -> str:
    """A claim owner token unique to this process and call: ``label@host:pid:random`` (a run's
    full owner, with its process identity: :meth:`Owner.of_this_process`)."""
    return Owner.of_this_process(label).token


class StagingStore:
    """Invoices, runs and failures in the staging database (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        url: str,
        now: Clock = utc_now,
    ) -> None:
        self._engine, self._url, self._now = engine, url, now
        self._backend = backend_of(url)

    # --- lifecycle ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str,
        *,
        now: Clock = utc_now,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
        migrate: bool = True,
    ) -> StagingStore:
        """Connect to ``url`` (creating a SQLite file's directory) and upgrade its schema."""
        store = cls(create_staging_engine(url, busy_timeout), url, now)
        try:
            store._clock()  # a naive clock is refused here, not at the first write
            if migrate:
                store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for reports and tests; writes go through this class)."""
        return self._engine

    @property
    def backend(self) -> str:
        """``sqlite`` | ``postgresql`` | ``mysql``."""
        return self._backend

    def migrate(self, target: str = "head") -> list[str]:
        """Upgrade the schema to Alembic revision ``target``; the revisions applied (a database
        of the pre-Alembic runner is stamped first, see :mod:`pipeline.staging.migrations`)."""
        try:
            with self._engine.connect() as conn:
                return migrations.upgrade(conn, self._backend, target=target)
        except sa_exc.SQLAlchemyError as error:
            raise staging_error(self._url, "migrating the schema", error) from None

    @property
    def schema_revision(self) -> str | None:
        """The database's Alembic revision (``None`` before the first upgrade)."""
        return self._read("reading the schema revision", migrations.current_revision)

    # --- transactions ---------------------------------------------------------------------
    def _write(self, action: str, work: Callable[[Connection], T]) -> T:
        return self._transaction(action, work, read_only=False)

    def _read(self, action: str, work: Callable[[Connection], T]) -> T:
        return self._transaction(action, work, read_only=True)

    def _transaction(self, action: str, work: Callable[[Connection], T], *, read_only: bool) -> T:
        for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
            try:
                with self._engine.connect() as conn:
                    conn.execution_options(**{READ_ONLY: read_only})
                    with conn.begin():
                        return work(conn)
            except sa_exc.DBAPIError as error:
                if attempt < _TRANSACTION_ATTEMPTS and is_retryable(error):
                    continue
                if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
                    raise staging_error(self._url, action, error) from None
                raise staging_error(self._url, action, error) from error
            except sa_exc.SQLAlchemyError as error:
                raise staging_error(self._url, action, error) from error
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _clock(self) -> datetime:
        moment = self._now()
        if moment.tzinfo is None:
            raise ValueError("StagingStore: the now() function must return an aware datetime")
        return moment

    # --- runs -------------------------------------------------------------------------------
    def start_run(
        self,
        flow: str,
        mapping: str,
        parameters: dict[str, Any],
        historical: bool,
        *,
        parent_run_id: int | None = None,
        owner: Owner | None = None,
        lease_seconds: float = DEFAULT_LEASE_S,
    ) -> int:
        """Record a new ``running`` run (under ``parent_run_id``, if any) owned by ``owner``,
        its lease running ``lease_seconds`` (renew it with :meth:`heartbeat`); its id."""
        now = self._clock()
        until = now + timedelta(seconds=lease_seconds)
        columns = owners.owner_columns(owner, now, until) if owner is not None else None
        return self._write(
            "starting a run",
            lambda c: history.start_run(
                c,
                flow=flow,
                mapping=mapping,
                parameters=parameters,
                historical=historical,
                now=now,
                parent_run_id=parent_run_id,
                owner=columns,
            ),
        )

    def start_owned_run(
        self,
        flow: str,
        mapping: str,
        parameters: dict[str, Any],
        historical: bool,
        *,
        owner: Owner,
        counts: Callable[[], dict[str, int]],
        lease_seconds: float = DEFAULT_LEASE_S,
        parent_run_id: int | None = None,
    ) -> tuple[int, Heartbeat]:
        """Mark crashed the runs whose owner is gone (their claims become free), record a new run
        owned by ``owner`` and start its heartbeat (``counts()``: its counts so far, recorded with
        each beat); the run id and the started heartbeat (stop it before finishing the run)."""
        for dead in self.reap_dead_runs():
            log.warning("run %s crashed: %s", dead.run_id, dead.reason)
        run_id = self.start_run(
            flow,
            mapping,
            parameters,
            historical,
            parent_run_id=parent_run_id,
            owner=owner,
            lease_seconds=lease_seconds,
        )
        beat = Heartbeat(
            lambda: self.heartbeat(run_id, lease_seconds, counts()), lease_seconds, f"run {run_id}"
        )
        beat.start()
        return run_id, beat

    def heartbeat(self, run_id: int, lease_seconds: float, counts: dict[str, int]) -> bool:
        """Renew run ``run_id``'s lease by ``lease_seconds`` and record its counts so far; False
        when staging no longer counts it as running (another process found its owner gone)."""
        now = self._clock()
        until = now + timedelta(seconds=lease_seconds)
        return self._write(
            f"renewing the lease of run {run_id}",
            lambda c: owners.heartbeat(c, run_id, now, until, counts),
        )

    def reap_dead_runs(self) -> list[owners.Reaped]:
        """Mark ``crashed`` every running run whose owner is gone (releasing its claims)."""
        now = self._clock()
        return self._write("marking dead runs crashed", lambda c: owners.reap_dead_runs(c, now))

    def finish_run(
        self,
        run_id: int,
        *,
        status: RunStatus,
        counts: dict[str, int],
        watermark: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Close run ``run_id`` (succeeded / partial / failed / interrupted) with its counts and
        the ``reason`` for its status."""
        now = self._clock()
        self._write(
            f"finishing run {run_id}",
            lambda c: history.finish_run(
                c,
                run_id=run_id,
                status=status,
                counts=counts,
                watermark=watermark,
                now=now,
                reason=reason,
            ),
        )

    def last_watermark(self, mapping: str, flow: str | None = None) -> str | None:
        """The watermark of the last succeeded run of ``mapping`` (of ``flow``) that has one."""
        return self._read(
            "reading the watermark", lambda c: history.last_watermark(c, mapping, flow)
        )

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first."""
        return self._read("listing runs", lambda c: history.list_runs(c, limit))

    def runs_of_parent(self, parent_id: int) -> list[RunRecord]:
        """The runs started under run ``parent_id`` (a backfill's partitions), oldest first."""
        return self._read(
            f"reading the runs of run {parent_id}", lambda c: history.runs_of_parent(c, parent_id)
        )

    def get_run(self, run_id: int) -> RunRecord | None:
        """One run, or ``None``."""
        return self._read(f"reading run {run_id}", lambda c: history.get_run(c, run_id))

    # --- the daily AppZen budget ------------------------------------------------------------
    def daily_budget(self, settings: Settings, flow: str) -> DailyBudget:
        """A run's share of the day's AppZen request budget (``APPZEN_DAILY_BUDGET``), counted
        here for ``flow`` (:mod:`pipeline.staging.budget`)."""
        policy = budget.BudgetPolicy.from_settings(settings)
        return DailyBudget(budget.StagingLedger(policy, self._write, self._clock), flow)

    def rate_memory(self, settings: Settings, endpoint: str) -> RateMemory | None:
        """The rate earlier runs learned for AppZen's ``endpoint`` with these credentials (None
        when ``APPZEN_REMEMBER_RATE`` is off): :mod:`pipeline.staging.ratememory`."""
        account = f"{budget.account_of(settings)}:{endpoint}"
        return rate_memory(settings, account, self._read, self._write, self._clock)

    def budget_forecast(self, settings: Settings, flow: str, requests: int) -> budget.Forecast:
        """The AppZen days ``requests`` of ``flow`` need from now (today's use counted), at the
        configured rate (``APPZEN_RATE_LIMIT``)."""
        policy = budget.BudgetPolicy.from_settings(settings)
        now = self._clock()
        used = self._read("reading the AppZen budget", lambda c: budget.used_today(c, policy, now))
        rate = settings.appzen_rate_limit
        return budget.forecast(policy, flow, requests, used=used, now=now, rate=rate)

    def budget_usage(self, settings: Settings) -> budget.BudgetUsage:
        """Today's use of the AppZen daily budget (every flow, every worker)."""
        policy = budget.BudgetPolicy.from_settings(settings)
        now = self._clock()
        return self._read("reading the AppZen budget", lambda c: budget.usage(c, policy, now))

    def backfill_days(self, settings: Settings, parent_id: int) -> list[BackfillDay]:
        """The AppZen days of the backfill run ``parent_id`` and of the runs it resumes."""
        policy = budget.BudgetPolicy.from_settings(settings)
        return self._read(
            "reading the backfill's days", lambda c: backfill_days(c, policy, parent_id)
        )

    # --- planning, claiming, outcomes -------------------------------------------------------
    def claim_batch(
        self,
        mapping: str,
        items: Sequence[StageItem],
        *,
        owner: str,
        lease_seconds: float,
        run_id: int,
        force: bool = False,
        retry_failed: bool = False,
    ) -> list[Decision]:
        """Upsert ``items`` and decide each; every ``send`` is claimed for ``owner`` until
        now + ``lease_seconds``. Decisions come back in the order of ``items``."""
        if lease_seconds <= 0:
            raise ValueError(f"claim_batch: lease_seconds must be > 0, not {lease_seconds}")
        now = self._clock()
        request = claims.ClaimRequest(
            mapping,
            owner,
            now,
            now + timedelta(seconds=lease_seconds),
            force,
            retry_failed,
            run_id,
        )
        return self._write(
            f"claiming a batch of {len(items)} for {mapping!r}",
            lambda c: claims.claim_batch(c, request, items),
        )

    def plan_batch(
        self,
        mapping: str,
        items: Sequence[StageItem],
        *,
        force: bool = False,
        retry_failed: bool = False,
    ) -> list[Decision]:
        """What :meth:`claim_batch` would decide for ``items``; reads only (``--dry-run``)."""
        now = self._clock()
        request = claims.ClaimRequest(mapping, "dry-run", now, now, force, retry_failed, 0)
        return self._read(
            f"planning a batch of {len(items)} for {mapping!r}",
            lambda c: claims.plan_batch(c, request, items),
        )

    def record_outcomes(
        self,
        run_id: int,
        mapping: str,
        outcomes_: Sequence[SendOutcome],
        *,
        owner: str | None = None,
    ) -> None:
        """Apply AppZen's answers for one batch and release those claims (only ``owner``'s
        claims when given, so a worker whose lease expired cannot free another's)."""
        now = self._clock()
        self._write(
            f"recording {len(outcomes_)} outcomes for {mapping!r}",
            lambda c: outcomes.record_outcomes(
                c, mapping=mapping, run_id=run_id, outcomes=outcomes_, now=now, owner=owner
            ),
        )

    def release_claims(self, owner: str, mapping: str | None = None) -> int:
        """Free every claim ``owner`` holds (its batch aborted); the count freed."""
        return self._write(
            f"releasing the claims of {owner!r}", lambda c: claims.release_claims(c, owner, mapping)
        )

    # --- failures ---------------------------------------------------------------------------
    def record_failures(
        self,
        run_id: int,
        mapping: str,
        failures: Sequence[RowFailure],
        facts: Mapping[str, InvoiceFacts] | None = None,
    ) -> None:
        """Store a batch of RowFailures for ``run_id`` and open (or keep open) the ledger entry
        of each invoice that failed to reach AppZen (``facts``: what names each, by key)."""
        now = self._clock()

        def work(conn: Connection) -> None:
            history.record_failures(conn, run_id, mapping, failures, now)
            ledger.note_failures(conn, run_id, mapping, failures, facts=facts or {}, now=now)

        self._write(f"recording {len(failures)} failures of run {run_id}", work)

    def failures_for_run(self, run_id: int) -> list[StoredFailure]:
        """The failures of ``run_id`` with their first and last seen times."""
        return self._read(
            f"reading the failures of run {run_id}", lambda c: history.failures_for_run(c, run_id)
        )

    def supplier_invoices(self, mapping: str, keys: list[str]) -> dict[str, list[str]]:
        """Sent invoices by supplier + normalised supplier invoice number (duplicate checks)."""
        return self._read(
            "looking up supplier invoice numbers",
            lambda c: reads.supplier_invoices(c, mapping, keys),
        )

    def acked_sources(self, mapping: str, keys: list[str]) -> dict[str, str]:
        """Unchanged-source lookup: the source hash behind each acknowledged, current payload
        of ``keys`` (:func:`pipeline.staging.reads.acked_sources`)."""
        return self._read(
            "looking up acknowledged source hashes",
            lambda c: reads.acked_sources(c, mapping, keys),
        )

    def failed_invoice_ids(self, mapping: str, run_id: int | None = None) -> set[str]:
        """Invoices to retry: state rejected / failed_retryable, plus the keys that failed (any
        stage) in ``run_id`` when given."""

        def work(conn: Connection) -> set[str]:
            keys = reads.failed_invoice_ids(conn, mapping)
            if run_id is not None:
                keys |= history.failed_source_keys(conn, mapping, run_id)
            return keys

        return self._read("listing failed invoices", work)

    # --- status-sync --------------------------------------------------------------------------
    def status_candidates(
        self, mapping: str, limit: int, after_key: str | None = None
    ) -> list[StatusCandidate]:
        """Sent invoices whose ERP status differs from the last push, keyset-paginated."""
        return self._read(
            "listing status-sync candidates",
            lambda c: reads.status_candidates(c, mapping, limit, after_key),
        )

    def compare_status_reads(
        self, mapping: str, reads: Sequence[StatusRead], *, plan: bool = False
    ) -> statuses.StatusComparison:
        """Which read ERP statuses differ from staging's (``plan``: which would be pushed)."""
        return self._read(
            f"comparing {len(reads)} ERP statuses",
            lambda c: statuses.compare_status_reads(c, mapping, reads, plan=plan),
        )

    def record_status_reads(self, mapping: str, changed: Sequence[StatusRead]) -> None:
        """Write changed ERP statuses (pending a push where they differ from the last one)."""
        if not changed:
            return
        now = self._clock()
        self._write(
            f"recording {len(changed)} changed ERP statuses",
            lambda c: statuses.record_status_reads(c, mapping, changed, now),
        )

    def refresh_status_reads(
        self, mapping: str, reads: statuses.StatusColumns
    ) -> statuses.StatusRefresh:
        """Compare a chunk of a status read with staging and record the changed ERP statuses
        (pending a push where they differ from the last one): one statement on PostgreSQL,
        :meth:`compare_status_reads` then :meth:`record_status_reads` elsewhere."""
        if not statuses.refreshes_in_one_statement(self._engine.dialect.name):
            comparison = self.compare_status_reads(mapping, reads.reads())
            self.record_status_reads(mapping, comparison.changed)
            return statuses.StatusRefresh(len(comparison.changed), comparison.not_staged)
        now = self._clock()
        return self._write(
            f"recording {len(reads)} ERP statuses",
            lambda c: statuses.refresh_status_reads(c, mapping, reads, now),
        )

    def named_lock(self, name: str) -> NamedLock:
        """A lock named ``name`` held through this database (one status-sync per mapping)."""
        return NamedLock(self._engine, name, self._url)

    def record_pushes(
        self, mapping: str, pushed: Sequence[PushRecord], at: datetime | None = None
    ) -> None:
        """Remember what status-sync pushed (at ``at``, default now)."""
        moment = at or self._clock()
        self._write(
            f"recording {len(pushed)} status pushes",
            lambda c: outcomes.record_pushes(c, mapping, pushed, moment),
        )

    def mark_pushes_in_doubt(self, mapping: str, pushes: Sequence[PushRecord]) -> None:
        """Before pushing: remember each push until its outcome is recorded (a crash leaves it,
        and the next status-sync counts the repeat as ``repushed_after_crash``)."""
        if not pushes:
            return
        now = self._clock()
        self._write(
            f"marking {len(pushes)} status pushes as sent",
            lambda c: outcomes.mark_pushes_in_doubt(c, mapping, pushes, now),
        )

    def clear_pushes_in_doubt(self, mapping: str, invoice_ids: Sequence[str]) -> None:
        """These pushes surely did not reach AppZen (refused, or only ever throttled)."""
        if not invoice_ids:
            return
        now = self._clock()
        self._write(
            f"clearing {len(invoice_ids)} status pushes",
            lambda c: outcomes.clear_pushes_in_doubt(c, mapping, invoice_ids, now),
        )

    def mark_recreate(self, mapping: str, invoice_id: str, reason: str) -> None:
        """AppZen no longer knows this invoice's uuid: the next claim_batch sends a create."""
        now = self._clock()
        self._write(
            f"marking {invoice_id!r} for re-creation",
            lambda c: outcomes.mark_recreate(c, mapping, invoice_id, reason, now),
        )

    # --- reads ----------------------------------------------------------------------------------
    def get_invoice(self, mapping: str, invoice_id: str) -> InvoiceRecord | None:
        """One staged invoice, or ``None``."""
        return self._read(
            f"reading invoice {invoice_id!r}", lambda c: reads.get_invoice(c, mapping, invoice_id)
        )

    def invoices_in_state(
        self, mapping: str, state: InvoiceState, limit: int, after_key: str | None = None
    ) -> list[InvoiceRecord]:
        """A page of invoices in ``state`` (e.g. ``recreate`` rows to resend), by key."""
        return self._read(
            f"listing {state} invoices",
            lambda c: reads.invoices_in_state(c, mapping, state, limit, after_key),
        )

    def count_by_state(self, mapping: str) -> dict[str, int]:
        """``{state: count}`` for ``mapping``."""
        return self._read("counting invoices", lambda c: reads.count_by_state(c, mapping))

    def sample_sent(self, mapping: str, n: int) -> list[InvoiceRecord]:
        """Up to ``n`` random acknowledged invoices."""
        return self._read("sampling sent invoices", lambda c: reads.sample_sent(c, mapping, n))

    # --- audit outcomes and write-backs ----------------------------------------------------------
    @property
    def audit(self) -> AuditStore:
        """AppZen audit outcomes and what the ERP-side systems were told (migration 003)."""
        return AuditStore(self._read, self._write, self._clock)

    @property
    def ledger(self) -> LedgerStore:
        """The open-failures ledger: one entry per invoice until it is delivered (0007)."""
        return LedgerStore(self._read, self._write, self._clock)
