"""StagingError: locked, full, unreachable, bad URL; each names the database, never its password,
and is transient (locked, unreachable) or terminal (full, bad URL) by its class."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipeline.staging import (
    StageItem,
    StagingError,
    StagingStore,
    StagingTerminalError,
    StagingTransientError,
)

SECRET = "S3cr3t-pa55"


def chain_text(error: BaseException) -> str:
    """Everything an operator could see: the message, repr, and every chained exception."""
    texts: list[str] = []
    current: BaseException | None = error
    while current is not None:
        texts += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(texts)


def hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_a_lock_held_past_the_busy_timeout_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "staging.db"
    with StagingStore.open(f"sqlite:///{path}", busy_timeout=0.3) as store:
        holder = hold_write_lock(path)
        try:
            started = time.monotonic()
            with pytest.raises(StagingTransientError) as caught:
                store.start_run("nightly", "m", {}, historical=False)
            waited = time.monotonic() - started
        finally:
            holder.rollback()
            holder.close()
    message = str(caught.value)
    assert str(path) in message
    assert "starting a run failed: database is locked" in message
    assert "busy timeout" in message
    assert waited >= 0.25, "it waited for the lock before giving up"


def test_a_lock_released_within_the_busy_timeout_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "staging.db"
    with StagingStore.open(f"sqlite:///{path}", busy_timeout=20) as store:
        holder = hold_write_lock(path)
        release = threading.Timer(0.3, holder.rollback)
        release.start()
        try:
            run_id = store.start_run("nightly", "m", {}, historical=False)
        finally:
            release.join()
            holder.close()
        assert store.get_run(run_id) is not None


def test_readers_are_not_blocked_by_a_writer_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "staging.db"
    with StagingStore.open(f"sqlite:///{path}", busy_timeout=0.2) as store:
        run_id = store.start_run("nightly", "m", {}, historical=False)
        holder = hold_write_lock(path)
        try:
            assert store.get_run(run_id) is not None
            assert store.count_by_state("m") == {}
        finally:
            holder.rollback()
            holder.close()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_a_full_disk_is_a_clear_error_and_commits_nothing(tmp_path: Path) -> None:
    path = tmp_path / "staging.db"
    with StagingStore.open(f"sqlite:///{path}") as store:
        run_id = store.start_run("nightly", "m", {}, historical=False)

        def cap_size(dbapi_connection: Any, _record: Any) -> None:
            pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
            dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 2}")

        sa.event.listen(store.engine, "connect", cap_size)
        store.engine.dispose()  # new connections get the cap: the "disk" is almost full
        items = [StageItem(f"INV-{n:06d}-{'x' * 80}", "h" * 64) for n in range(2_000)]
        with pytest.raises(StagingTerminalError, match=r"full.*free space") as caught:
            store.claim_batch("m", items, owner="w", lease_seconds=5, run_id=run_id)
        assert str(path) in str(caught.value)
        assert store.count_by_state("m") == {}, "the failed batch left nothing behind"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql+psycopg://etl:{SECRET}@127.0.0.1:1/staging", id="postgresql"),
        pytest.param(f"mysql+pymysql://etl:{SECRET}@127.0.0.1:1/staging", id="mysql"),
    ],
)
def test_an_unreachable_server_is_named_without_its_password(url: str) -> None:
    with pytest.raises(StagingTransientError) as caught:
        StagingStore.open(url)
    message = str(caught.value)
    assert "etl:***@127.0.0.1:1/staging" in message
    assert "is the database server running and reachable?" in message
    assert SECRET not in chain_text(caught.value)


@pytest.mark.postgres
def test_a_missing_database_on_a_live_server_is_named_without_its_password() -> None:
    url = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:5432/no_such_staging_db"
    with pytest.raises(StagingError, match=r"no_such_staging_db.*create the database") as caught:
        StagingStore.open(url)
    assert SECRET not in chain_text(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL; expected e.g. sqlite:///"),
        (f"mssql+pyodbc://sa:{SECRET}@db/staging", "dialect 'mssql' is not supported"),
        (f"postgresql+nodriver://u:{SECRET}@h/db", "cannot build an engine"),
    ],
)
def test_a_bad_url_is_refused_before_connecting(url: str, message: str) -> None:
    with pytest.raises(StagingTerminalError, match=message) as caught:
        StagingStore.open(url)
    assert SECRET not in chain_text(caught.value)


def test_an_uncreatable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(StagingTerminalError, match="cannot create its directory"):
        StagingStore.open(f"sqlite:///{blocker}/staging.db")


def test_naive_clocks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        StagingStore.open(f"sqlite:///{tmp_path}/s.db", now=datetime.now)
