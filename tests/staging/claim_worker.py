"""A separate process for the staging concurrency tests (run as a script, not collected by pytest).

``contend``: claim overlapping batches of the same invoices for a number of rounds; for every
invoice this worker is told to send, take it in ``claim_holders`` (``holder IS NULL`` → self)
before "sending" (a short sleep standing for the HTTP requests) and give it back after. If two
workers ever held a claim on the same invoice at once, one of them finds the holder already set:
that is counted as a violation.

``crash``: stage and acknowledge batches forever, until the parent kills it with SIGKILL.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from pipeline.staging import SendOutcome, StageItem, StagingStore

MAPPING = "contention"
KEYS = [f"K{n:05d}" for n in range(2_000)]
BATCH = 500
SEND_LATENCY_S = 0.03
holders = sa.Table(
    "claim_holders",
    sa.MetaData(),
    sa.Column("invoice_id", sa.String(255), primary_key=True),
    sa.Column("holder", sa.String(200)),
)


def wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear within {seconds} s")
        time.sleep(0.01)


def acked(key: str, hash_: str) -> SendOutcome:
    return SendOutcome(
        key, hash_, b"{}", "acked", "update", uuid=f"u-{key}", appzen_status="UPDATED"
    )


def contend(url: str, owner: str, run_id: int, rounds: int, seed: int, sync_dir: Path) -> None:
    rng = random.Random(seed)
    tally = {"send": 0, "busy": 0, "violations": 0}
    with StagingStore.open(url) as store:
        side = sa.create_engine(url)
        (sync_dir / f"ready-{owner}").touch()
        wait_for(sync_dir / "go", 60)
        for round_ in range(rounds):
            start = rng.randrange(len(KEYS))
            batch = [KEYS[(start + n) % len(KEYS)] for n in range(BATCH)]
            hash_ = f"{owner}-{round_}"
            items = [StageItem(key, hash_) for key in batch]
            decisions = store.claim_batch(
                MAPPING, items, owner=owner, lease_seconds=300, run_id=run_id
            )
            mine = [d.invoice_id for d in decisions if d.action == "send"]
            tally["send"] += len(mine)
            tally["busy"] += sum(d.action == "busy" for d in decisions)
            with side.begin() as conn:
                taken = conn.execute(
                    sa.update(holders)
                    .where(holders.c.invoice_id.in_(mine), holders.c.holder.is_(None))
                    .values(holder=owner)
                ).rowcount
            tally["violations"] += len(mine) - taken
            time.sleep(SEND_LATENCY_S)  # the HTTP requests, while the claims are held
            with side.begin() as conn:
                conn.execute(
                    sa.update(holders).where(holders.c.holder == owner).values(holder=None)
                )
            store.record_outcomes(run_id, MAPPING, [acked(k, hash_) for k in mine], owner=owner)
        side.dispose()
    (sync_dir / f"result-{owner}.json").write_text(json.dumps(tally))


def crash(url: str, owner: str, run_id: int, sync_dir: Path) -> None:
    with StagingStore.open(url) as store:
        round_ = 0
        while True:
            batch = KEYS[(round_ * 100) % len(KEYS) :][:100]
            hash_ = f"h{round_ // (len(KEYS) // 100)}"
            items = [StageItem(key, hash_) for key in batch]
            decisions = store.claim_batch(
                MAPPING, items, owner=owner, lease_seconds=60, run_id=run_id
            )
            sends = [d.invoice_id for d in decisions if d.action == "send"]
            store.record_outcomes(run_id, MAPPING, [acked(k, hash_) for k in sends], owner=owner)
            round_ += 1
            if round_ == 3:
                (sync_dir / f"ready-{owner}").touch()


if __name__ == "__main__":
    mode, url, owner, run = sys.argv[1:5]
    folder = Path(sys.argv[-1])
    if mode == "contend":
        contend(url, owner, int(run), int(sys.argv[5]), int(sys.argv[6]), folder)
    else:
        crash(url, owner, int(run), folder)
