"""Staging as a first run leaves it, without posting 100,000 invoices over HTTP first.

Every invoice of the source is mapped as a run maps it (its source hash included), registered in
the sandbox process (which hands out its uuid, exactly as a create would), then claimed and
recorded in staging as acknowledged (CREATED, that uuid, the payload's hash and bytes): the state a
successful backfill leaves. Rows 5 and 6 start from there; row 2 measures real posting on its own,
smaller source.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.runs import SAMPLE_MAPPING
from benchmarks.sandbox import SandboxProcess
from pipeline.mapping import MappedInvoice, MappingEngine, load_mapping
from pipeline.staging import StagingStore
from pipeline.staging.records import SendOutcome, StageItem

BATCH = 2_000
OWNER = "benchmark-seed"


@dataclass(frozen=True, slots=True)
class Seeded:
    """How many invoices were staged as sent, and the seconds it took."""

    invoices: int
    seconds: float


def seed_sent(
    store: StagingStore, sandbox: SandboxProcess, erp_url: str, mapping: Path = SAMPLE_MAPPING
) -> Seeded:
    """Stage every invoice of the source as acknowledged by the sandbox (see module docstring)."""
    started = time.perf_counter()
    spec = load_mapping(mapping)
    source = spec.open_source(None, erp_url)
    run_id = store.start_run("backfill", spec.name, {"seeded_by": "benchmarks"}, True)
    batch: list[MappedInvoice] = []
    staged = 0
    chunks = source.chunks({"since": None, "until": None})
    for result in MappingEngine(spec).run_skipping(chunks, _nothing_acked):  # hashes the sources
        if isinstance(result, MappedInvoice):
            batch.append(result)
        if len(batch) >= BATCH:
            staged += _stage(store, sandbox, spec.name, run_id, batch)
            batch = []
    if batch:
        staged += _stage(store, sandbox, spec.name, run_id, batch)
    store.finish_run(run_id, status="succeeded", counts={"created": staged})
    return Seeded(staged, time.perf_counter() - started)


def _nothing_acked(keys: list[str]) -> dict[str, str]:
    return {}


def _stage(
    store: StagingStore,
    sandbox: SandboxProcess,
    mapping: str,
    run_id: int,
    batch: list[MappedInvoice],
) -> int:
    uuids = sandbox.seed([invoice.key for invoice in batch])
    items = [
        StageItem(
            m.key,
            m.payload_hash,
            m.erp_status,
            m.erp_error.model_dump(exclude_none=True) if m.erp_error else None,
            m.source_hash,
        )
        for m in batch
    ]
    store.claim_batch(mapping, items, owner=OWNER, lease_seconds=600, run_id=run_id)
    outcomes = [
        SendOutcome(
            m.key,
            m.payload_hash,
            m.payload,
            "acked",
            "create",
            uuid=uuids[m.key],
            appzen_status="CREATED",
            http_status=201,
            historical=True,
        )
        for m in batch
    ]
    store.record_outcomes(run_id, mapping, outcomes, owner=OWNER)
    return len(outcomes)
