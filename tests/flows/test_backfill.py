"""The backfill flow: partitions cover the date range exactly once with ``historical: true``, and
a backfill cut short by a fatal answer is finished by a rerun that sends nothing twice."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime

import pytest
import sqlalchemy as sa

from flows.backfill import backfill, backfill_partition
from pipeline.devkit.sample_erp import GenerationReport
from pipeline.devkit.sandbox import SandboxServer
from pipeline.devkit.sandbox.knobs import Credentials
from pipeline.jobs.store import open_store
from pipeline.load.partition import partition_range
from pipeline.settings import Settings
from tests.flows.helpers import (
    MAPPING,
    artifact_data,
    counts_of,
    flow_run_id,
    in_days,
    logs_of,
    updated_at,
)

pytestmark = pytest.mark.prefect


async def test_partitions_cover_the_range_exactly_once(
    flow_env: Settings, sandbox: SandboxServer, erp: tuple[str, GenerationReport]
) -> None:
    url, report = erp
    moments = updated_at(url)
    start, end = date(2024, 3, 1), date(2024, 9, 30)
    in_range = in_days(moments, start, end)
    assert 0 < len(in_range) < len(moments)  # the range leaves invoices out on both sides
    refused = _refuse_a_supplier(url, sandbox, in_range - set(report.dirty_ids))

    state = await backfill(mapping=MAPPING, start=start, end=end, partitions=4, return_state=True)
    rows = await state.aresult()

    invoices = sandbox.state.invoices()
    assert set(invoices) == in_range - set(report.dirty_ids) - refused
    assert {(record.versions, record.historical) for record in invoices.values()} == {(1, (True,))}
    bounds = [(row["since"], row["until"]) for row in rows]
    assert bounds == partition_range(start, end, 4)
    assert bounds[0][0] == "2024-02-29 23:59:59.999999"
    assert bounds[-1][1] == "2024-09-30 23:59:59.999999"
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # no gap, no overlap
    for row, (since, until) in zip(rows, bounds, strict=True):
        assert row["state"] == "Completed"
        assert isinstance(since, str)
        assert isinstance(until, str)
        low, high = datetime.fromisoformat(since), datetime.fromisoformat(until)
        mine = {key for key, moment in moments.items() if low < moment <= high}
        assert counts_of(row)["extracted"] == len(mine)
    _assert_linked_to_their_parent(flow_env, rows)
    markdown = (await artifact_data("backfill-sample-erp-summary")).replace("\\", "")
    assert "## Partitions" in markdown
    assert "## Total of 4 runs" in markdown
    assert f"| created | {len(invoices)} |" in markdown
    assert markdown.count("· historical") == 4
    for key in refused | (in_range & set(report.dirty_ids)):  # the failed invoices themselves
        assert f"| {key} |" in markdown
    messages = [log.message for log in await logs_of(flow_run_id(state))]
    for index in range(1, 5):  # the parent says when each partition starts and ends, with counts
        label = f"backfill partition {index} of 4 (after "
        assert any(m.startswith(label) and m.endswith("): started") for m in messages), messages
        ended = [m for m in messages if m.startswith(label) and "): Completed; backfill run " in m]
        assert len(ended) == 1, messages
        assert f" succeeded: extracted {counts_of(rows[index - 1])['extracted']:,}" in ended[0]


def _refuse_a_supplier(erp_url: str, sandbox: SandboxServer, among: set[str]) -> set[str]:
    """Make AppZen refuse the supplier of one of ``among`` (a business 400); the invoices of
    ``among`` it refuses."""
    engine = sa.create_engine(erp_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT document_no, supplier_id FROM erp_invoice"))
            supplier_of = {str(key): str(supplier) for key, supplier in rows}
    finally:
        engine.dispose()
    supplier = supplier_of[min(among)]
    sandbox.state.configure(unknown_suppliers=frozenset({supplier}))
    return {key for key in among if supplier_of[key] == supplier}


def _assert_linked_to_their_parent(settings: Settings, rows: list[dict[str, object]]) -> None:
    """The backfill is a staging run of its own; each partition's run names it as its parent."""
    with open_store(settings) as store:
        [parent] = [run for run in store.list_runs(50) if "partitions" in run.parameters]
        partitions = store.runs_of_parent(parent.id)
    assert (parent.flow, parent.status, parent.parameters["partitions"]) == (
        "backfill",
        "succeeded",
        4,
    )
    assert [run.id for run in partitions] == sorted(int(str(row["run_id"])) for row in rows)
    assert parent.counts["extracted"] == sum(counts_of(row)["extracted"] for row in rows)


@pytest.fixture
def rotate_when(sandbox: SandboxServer) -> Iterator[threading.Event]:
    """Set the event to have a thread rotate AppZen's credentials (every request then 401) once
    at least 20 invoices are stored and no request is in flight; the old ones come back after."""
    original = sandbox.state.credentials
    armed, stop = threading.Event(), threading.Event()

    def rotate() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            if armed.is_set() and len(sandbox.state.invoices()) >= 20 and _idle(sandbox):
                sandbox.state.credentials = Credentials(api_key="rotated-by-the-test")
                return
            time.sleep(0.001)

    thread = threading.Thread(target=rotate, daemon=True)
    thread.start()
    yield armed
    stop.set()
    thread.join(5)
    sandbox.state.credentials = original


def _idle(sandbox: SandboxServer) -> bool:
    state = sandbox.state
    answered = sum(state.response_counts().values()) - state.response_counts().get(429, 0)
    return len(state.accepted_times()) == answered + state.dropped()


async def test_a_rerun_finishes_an_interrupted_backfill_and_sends_nothing_twice(
    flow_env: Settings,
    sandbox: SandboxServer,
    erp: tuple[str, GenerationReport],
    rotate_when: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, report = erp
    clean = set(updated_at(url)) - set(report.dirty_ids)
    monkeypatch.setenv("APPZEN_RATE_LIMIT", "40")  # one request at a time, 25 ms apart
    monkeypatch.setenv("APPZEN_MAX_CONCURRENCY", "1")
    monkeypatch.setenv("BATCH_SIZE", "10")
    start, end = date(2024, 1, 1), date(2025, 1, 31)

    rotate_when.set()
    first = await backfill(mapping=MAPPING, start=start, end=end, partitions=2, return_state=True)

    assert first.is_failed()
    assert "rerun it to finish" in (first.message or "")
    done = set(sandbox.state.invoices())
    assert 20 <= len(done) < len(clean)
    assert sandbox.state.response_counts().get(401, 0) >= 1

    sandbox.state.credentials = Credentials()  # the operator fixes the credentials
    rows = await backfill(mapping=MAPPING, start=start, end=end, partitions=2)

    invoices = sandbox.state.invoices()
    assert set(invoices) == clean
    assert {record.versions for record in invoices.values()} == {1}  # nothing sent twice
    counts = [counts_of(row) for row in rows]
    assert sum(c.get("unchanged", 0) for c in counts) == len(done)
    assert sum(c.get("created", 0) for c in counts) == len(clean - done)


async def test_a_spread_backfill_reports_lost_partitions_instead_of_waiting_forever(
    flow_env: Settings, sandbox: SandboxServer
) -> None:
    """Partition runs of a deployment no worker serves (a lost worker) stay Scheduled: the
    backfill stops waiting after ``partition_timeout``, names them lost, and ends Failed with
    its staging run ``failed``; nothing was sent."""
    deployment = await backfill_partition.ato_deployment(name="nobody-serves")
    await deployment.aapply()

    state = await backfill(
        mapping=MAPPING,
        start=date(2024, 1, 1),
        end=date(2024, 12, 31),
        partitions=2,
        spread=True,
        deployment="backfill-partition/nobody-serves",
        global_limit=None,
        partition_timeout=3,
        return_state=True,
    )

    assert state.is_failed(), state
    message = state.message or ""
    assert "partition 1: Lost (Scheduled)" in message, message
    assert "partition 2: Lost (Scheduled)" in message, message
    store = open_store(flow_env)
    try:
        parent = store.list_runs(1)[0]
    finally:
        store.close()
    assert (parent.flow, parent.status) == ("backfill", "failed"), parent
    assert sandbox.state.invoices() == {}
