"""Two processes on one staging database: claims never overlap; a kill -9 leaves it consistent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.staging import StageItem, StagingStore
from tests.staging.claim_worker import KEYS, MAPPING, holders
from tests.staging.helpers import FakeClock

pytestmark = pytest.mark.slow  # worker processes contend for the same invoices

WORKER = Path(__file__).with_name("claim_worker.py")
ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 12  # per worker: batches of 500 out of the same 2,000 invoices


def spawn(*args: object) -> subprocess.Popen[bytes]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(WORKER), *map(str, args)]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE)


def wait_for(paths: list[Path], procs: list[subprocess.Popen[bytes]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not all(path.exists() for path in paths):
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"worker exited {proc.returncode}: {err.decode()[-2000:]}")
        assert time.monotonic() < deadline, f"workers not ready within {seconds} s"
        time.sleep(0.02)


def test_two_processes_never_hold_the_same_invoice(store_url: str, tmp_path: Path) -> None:
    with StagingStore.open(store_url) as store:
        run_id = store.start_run("contention", MAPPING, {}, historical=False)
        holders.drop(store.engine, checkfirst=True)
        holders.create(store.engine)
        with store.engine.begin() as conn:
            conn.execute(sa.insert(holders), [{"invoice_id": key} for key in KEYS])
    try:
        owners = ["worker-a", "worker-b"]
        procs = [
            spawn("contend", store_url, o, run_id, ROUNDS, n, tmp_path)
            for n, o in enumerate(owners)
        ]
        wait_for([tmp_path / f"ready-{o}" for o in owners], procs, 60)
        (tmp_path / "go").touch()
        for proc in procs:
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err.decode()[-2000:]
        tallies = [json.loads((tmp_path / f"result-{o}.json").read_text()) for o in owners]
        assert [t["violations"] for t in tallies] == [0, 0]
        assert all(t["send"] > 0 for t in tallies)
        assert sum(t["busy"] for t in tallies) > 0, f"the workers never contended: {tallies}"
        with StagingStore.open(store_url) as store, store.engine.connect() as conn:
            assert set(store.count_by_state(MAPPING)) <= {"sent", "pending"}
            still_claimed = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM invoices WHERE claimed_by IS NOT NULL"
            ).scalar()
            assert still_claimed == 0, "record_outcomes released every claim"
    finally:
        engine = sa.create_engine(store_url)
        holders.drop(engine, checkfirst=True)
        engine.dispose()


@pytest.mark.reliability
def test_a_worker_killed_mid_batch_leaves_a_consistent_store(
    store_url: str, tmp_path: Path
) -> None:
    with StagingStore.open(store_url) as store:
        run_id = store.start_run("crash", MAPPING, {}, historical=False)
    proc = spawn("crash", store_url, "doomed", run_id, tmp_path)
    wait_for([tmp_path / "ready-doomed"], [proc], 60)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    clock = FakeClock(start=FakeClock().current.replace(year=2100))  # every lease has expired
    with StagingStore.open(store_url, now=clock) as store:
        if store.backend == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        staged = [store.get_invoice(MAPPING, key) for key in KEYS]
        records = [record for record in staged if record is not None]
        assert records, "the worker staged something before it died"
        for record in records:
            assert record.state in {"pending", "sent"}
            if record.state == "sent":
                assert record.acked_hash == record.payload_hash
                assert record.uuid is not None
        keys = [record.invoice_id for record in records]
        items = [
            StageItem(key, record.payload_hash) for key, record in zip(keys, records, strict=True)
        ]
        decisions = store.claim_batch(
            MAPPING, items, owner="survivor", lease_seconds=60, run_id=run_id
        )
        assert {d.action for d in decisions} <= {"send", "unchanged"}, "no claim outlives a kill"
        for decision, record in zip(decisions, records, strict=True):
            expected = "unchanged" if record.state == "sent" else "send"
            assert decision.action == expected
