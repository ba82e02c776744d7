"""Helpers of the flow tests: the mapping, the ERP's dates, logs and artifacts read back."""

from __future__ import annotations

import inspect
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import Log, State
from prefect.logging.handlers import APILogWorker

REPO = Path(__file__).resolve().parents[2]
MAPPING = str(REPO / "mappings" / "sample_erp.yaml")


def updated_at(erp_url: str) -> dict[str, datetime]:
    """``document_no`` → ``updated_at`` of every invoice in the sample ERP."""
    engine = sa.create_engine(erp_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT document_no, updated_at FROM erp_invoice"))
            return {row[0]: _moment(row[1]) for row in rows}
    finally:
        engine.dispose()


def _moment(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def in_days(moments: dict[str, datetime], start: date, end: date) -> set[str]:
    """The keys whose moment falls on a day in ``[start, end]``."""
    low = datetime.combine(start, datetime.min.time())
    high = datetime.combine(end + timedelta(days=1), datetime.min.time())
    return {key for key, moment in moments.items() if low <= moment < high}


def flow_run_id(state: State[Any]) -> UUID:
    """The flow run a returned state belongs to."""
    run_id = state.state_details.flow_run_id
    assert run_id is not None
    return run_id


FLUSH_SECONDS = 60.0


async def flush_logs() -> None:
    """Send the log lines this process still holds to the server, waiting ``FLUSH_SECONDS`` at
    most (see :func:`logs_of`)."""
    drained = APILogWorker.drain_all(timeout=FLUSH_SECONDS)
    if inspect.isawaitable(drained):
        await drained


async def logs_of(run_id: UUID) -> list[Log]:
    """Every log line of a flow run and its task runs, as the Prefect server stored it.

    The log worker is drained first, for at most ``FLUSH_SECONDS``: Prefect's own
    ``APILogHandler.aflush()`` waits without a bound, and a worker stuck on a request to a
    loaded test server held a test until pytest-timeout (twice in full runs)."""
    await flush_logs()
    async with get_client() as client:
        return await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))


async def artifact_data(key: str) -> Any:
    """The latest version of the artifact ``key``: markdown text, or a table as a list of rows."""
    artifact = await Artifact.aget(key)
    assert artifact is not None, f"no artifact with key {key!r}"
    if artifact.type == "table":
        assert isinstance(artifact.data, str)
        return json.loads(artifact.data)
    return artifact.data


def counts_of(result: object) -> dict[str, int]:
    """The ``counts`` of a flow's summary dict (a flow returns plain JSON-ready data)."""
    assert isinstance(result, dict)
    counts = result["counts"]
    assert isinstance(counts, dict)
    return counts
