"""Backfill partitions read (and mapped, and posted) at once: as many as the cores and
ERP_MAX_CONNECTIONS allow; every invoice exactly once; a failing partition loses no other."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.devkit.sample_erp import generate, invoice
from pipeline.devkit.sandbox import SandboxServer
from pipeline.extract.base import SourceUnavailable
from pipeline.jobs import backfill as backfill_job
from pipeline.jobs.backfill import BackfillPartition, BackfillPlan
from pipeline.jobs.store import open_store
from pipeline.settings import Settings, SettingsError, load_settings
from pipeline.summary import RunSummary
from tests.databases import MARIADB_ADMIN, PG_ADMIN, mariadb_database, pg_schema

REPO = Path(__file__).resolve().parents[2]
MAPPING = REPO / "mappings" / "sample_erp.yaml"
PLAN = BackfillPlan(MAPPING, date(2024, 1, 1), date(2025, 1, 31), partitions=4)


def test_partitions_at_once_are_bounded_by_cores_and_the_connection_budget(
    settings: Settings,
) -> None:
    def at_once(budget: int, partitions: int, cores: int) -> int:
        bounded = settings.model_copy(update={"erp_max_connections": budget})
        return backfill_job.partitions_at_once(bounded, MAPPING, partitions, cores=cores)

    assert backfill_job.connections_per_partition(MAPPING) == 1  # lines come with the rows
    assert at_once(budget=4, partitions=8, cores=2) == 2  # the cores bind
    assert at_once(budget=3, partitions=8, cores=16) == 3  # the budget binds
    assert at_once(budget=4, partitions=2, cores=16) == 2  # no more than there are partitions
    assert at_once(budget=1, partitions=8, cores=16) == 1


def test_the_connection_budget_is_a_checked_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().erp_max_connections == 4
    monkeypatch.setenv("ERP_MAX_CONNECTIONS", "0")
    with pytest.raises(SettingsError, match="ERP_MAX_CONNECTIONS"):
        load_settings()
    monkeypatch.setenv("ERP_MAX_CONNECTIONS", "two")
    with pytest.raises(SettingsError, match="ERP_MAX_CONNECTIONS"):
        load_settings()


@dataclass
class _Running:
    """How many partitions run now, and the most that ever ran at once."""

    now: int = 0
    most: int = 0


def _runner(
    settings: Settings, running: _Running, fail: int | None = None
) -> Callable[[BackfillPartition], Awaitable[RunSummary]]:
    """Each partition as the Prefect flow runs it: its own staging store; partition ``fail``
    stops with a source error once it has started."""

    async def run(part: BackfillPartition) -> RunSummary:
        running.now += 1
        running.most = max(running.most, running.now)
        store = open_store(settings)
        try:
            await asyncio.sleep(0)  # the others may start meanwhile
            if part.index == fail:
                raise SourceUnavailable(f"partition {part.index}: the ERP went away")
            return await backfill_job.run_partition(settings, store, part)
        finally:
            store.close()
            running.now -= 1

    return run


def _in_range(url: str) -> list[str]:
    """The document numbers the plan's range holds in the ERP."""
    since, until = PLAN.ranges()[0][0], PLAN.ranges()[-1][1]
    assert since is not None
    assert until is not None
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            updated = invoice.c.updated_at
            rows = connection.execute(
                sa.select(invoice.c.document_no).where(
                    updated > datetime.fromisoformat(since),
                    updated <= datetime.fromisoformat(until),
                )
            )
            return sorted(str(row[0]) for row in rows)
    finally:
        engine.dispose()


class _Connections:
    """The most connections of the ERP at ``url`` open on its server at once, looked at every
    few milliseconds from a thread (an admin connection of its own) while the block runs:
    PostgreSQL's by ``application_name`` (pg_stat_activity), MariaDB's by database (its
    processlist); nothing on SQLite, which has no server."""

    def __init__(self, url: str) -> None:
        self.most = 0
        self.looks = 0
        self._stop = threading.Event()
        if url.startswith("postgresql"):
            admin, self._query = PG_ADMIN, _PG_CONNECTIONS
            self._params = {"name": APPLICATION}
        elif url.startswith("mysql"):
            admin, self._query = MARIADB_ADMIN, _MARIADB_CONNECTIONS
            self._params = {"db": str(sa.make_url(url).database)}
        else:
            admin = None
        self._engine = (
            None
            if admin is None
            else sa.create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        )
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        assert self._engine is not None
        with self._engine.connect() as connection:
            while not self._stop.is_set():
                found = connection.execute(self._query, self._params).scalar_one()
                self.most = max(self.most, int(found))
                self.looks += 1
                self._stop.wait(0.003)

    @property
    def watched(self) -> bool:
        """Whether a server was watched (not SQLite)."""
        return self._engine is not None

    def __enter__(self) -> _Connections:
        if self._engine is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._engine is not None:
            self._thread.join()
            self._engine.dispose()


APPLICATION = "appzen_budget_test"
_PG_CONNECTIONS = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
_MARIADB_CONNECTIONS = sa.text("SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = :db")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def erp_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A clean sample ERP (60 invoices, none dirty) on SQLite, PostgreSQL or MariaDB; a
    PostgreSQL connection names itself :data:`APPLICATION` (to be counted)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'erp.db'}"
        generate(url, invoices=60, seed=11, dirty_share=0.0)
        yield url
        return
    database = pg_schema if request.param == "postgresql" else mariadb_database
    with database("budget") as url:
        generate(url, invoices=60, seed=11, dirty_share=0.0)
        named = f"&application_name={APPLICATION}" if request.param == "postgresql" else ""
        yield url + named


def test_partitions_run_at_once_within_the_budget_and_send_every_invoice_once(
    sandbox: SandboxServer, settings: Settings, erp_url: str
) -> None:
    bounded = replace_settings(settings, erp_database_url=erp_url, erp_max_connections=2)
    at_once = backfill_job.partitions_at_once(bounded, MAPPING, PLAN.partitions, cores=8)
    assert at_once == 2
    running = _Running()
    parts = PLAN.partitions_of(None)

    with _Connections(erp_url) as connections:
        found = asyncio.run(backfill_job.run_partitions(parts, _runner(bounded, running), at_once))

    summaries = [summary for summary in found if isinstance(summary, RunSummary)]
    assert len(summaries) == 4
    assert all(summary.status == "succeeded" for summary in summaries)
    assert running.most == 2  # two at once, never more
    if connections.watched:
        assert connections.looks > 0
        assert 1 <= connections.most <= 2  # the server saw no more than the budget
    expected = _in_range(erp_url)
    assert expected
    stored = sandbox.state.invoices()
    assert sorted(stored) == expected  # every invoice of the range, none from outside
    assert all(record.versions == 1 for record in stored.values())  # each exactly once
    assert sum(summary.counts["extracted"] for summary in summaries) == len(expected)


def test_a_failing_partition_is_reported_and_the_others_finish(
    sandbox: SandboxServer, settings: Settings, erp_url: str
) -> None:
    bounded = replace_settings(settings, erp_database_url=erp_url, erp_max_connections=2)
    running = _Running()
    parts = PLAN.partitions_of(None)

    found = asyncio.run(backfill_job.run_partitions(parts, _runner(bounded, running, fail=2), 2))

    assert isinstance(found[1], SourceUnavailable)
    assert "partition 2: the ERP went away" in str(found[1])
    others = [summary for summary in found if isinstance(summary, RunSummary)]
    assert len(others) == 3
    assert all(summary.status == "succeeded" for summary in others)
    stored = sandbox.state.invoices()
    assert sum(summary.counts["extracted"] for summary in others) == len(stored) > 0
    assert all(record.versions == 1 for record in stored.values())
    # what partition 2 holds was not sent; a rerun of the backfill sends it
    lost = set(_in_range(erp_url)) - set(stored)
    assert lost
    retried = BackfillPartition(MAPPING, 2, parts[1].since, parts[1].until)
    again = asyncio.run(backfill_job.run_partitions([retried], _runner(bounded, running), 1))
    assert isinstance(again[0], RunSummary)
    assert set(sandbox.state.invoices()) == set(_in_range(erp_url))


def replace_settings(settings: Settings, **changes: object) -> Settings:
    """``settings`` with ``changes`` (validated again, as from the environment)."""
    values = {name: getattr(settings, name) for name in type(settings).model_fields}
    values.update(changes)
    for name, value in list(values.items()):
        secret = getattr(value, "get_secret_value", None)
        if secret is not None:
            values[name] = secret()
    return load_settings(**values)
