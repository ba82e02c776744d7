"""Backfills that span days (#18): a backfill run from its deployment and stopped by the spent
daily AppZen budget schedules a run of that deployment, same parameters, at the next AppZen day's
start; that run, with budget again, delivers the rest and sends nothing twice. A plain local
flow call cannot reschedule itself and says so."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.flow_engine import run_flow_async
from prefect.states import Scheduled

from flows.backfill import backfill, backfill_partition
from pipeline.devkit.sample_erp import GenerationReport
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from pipeline.staging.budget import BudgetPolicy
from tests.flows.helpers import MAPPING, artifact_data, flow_run_id, logs_of, updated_at

pytestmark = pytest.mark.prefect

START, END = date(2024, 1, 1), date(2025, 1, 31)
BUDGET = 12
"""Requests of the tiny day: far fewer than the invoices in range."""


@pytest.fixture
def tiny_budget(flow_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A day of :data:`BUDGET` requests, one request at a time (so the count is exact)."""
    monkeypatch.setenv("APPZEN_DAILY_BUDGET", str(BUDGET))
    monkeypatch.setenv("APPZEN_MAX_CONCURRENCY", "1")
    monkeypatch.setenv("BATCH_SIZE", "10")
    return flow_env


async def test_a_local_backfill_out_of_budget_says_it_does_not_reschedule_itself(
    tiny_budget: Settings, sandbox: SandboxServer
) -> None:
    state = await backfill(mapping=MAPPING, start=START, end=END, partitions=2, return_state=True)

    assert state.is_failed(), state
    assert "rerun it to finish" in (state.message or "")
    assert len(sandbox.state.invoices()) <= BUDGET
    messages = [log.message for log in await logs_of(flow_run_id(state))]
    line = "AppZen daily budget spent: backfill does not reschedule itself (not run from a "
    assert any(m.startswith(line) for m in messages), messages
    resume_at = BudgetPolicy(limit=BUDGET).next_day(datetime.now(UTC))
    async with get_client() as client:
        runs = await client.read_flow_runs()
    assert not [run for run in runs if run.expected_start_time == resume_at], runs


async def test_a_deployed_backfill_out_of_budget_resumes_the_next_day_and_finishes(
    tiny_budget: Settings,
    sandbox: SandboxServer,
    erp: tuple[str, GenerationReport],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, report = erp
    clean = set(updated_at(url)) - set(report.dirty_ids)
    assert len(clean) > BUDGET
    deployment = await backfill.ato_deployment(name="resume-test")
    deployment_id = await deployment.aapply()
    parameters = {"mapping": MAPPING, "start": str(START), "end": str(END), "partitions": 2}
    async with get_client() as client:
        first = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)

    state = await _run(first)

    assert state.is_completed(), state
    resume_at = BudgetPolicy(limit=BUDGET).next_day(datetime.now(UTC))
    [scheduled] = await _scheduled_runs_of(deployment_id)
    line = f"backfill resumes {resume_at:%Y-%m-%d %H:%M} UTC (flow run {scheduled.name})"
    assert line in (state.message or ""), state.message
    assert scheduled.id != first.id
    assert scheduled.parameters == first.parameters
    assert scheduled.expected_start_time is not None
    assert scheduled.expected_start_time.timestamp() == resume_at.timestamp()
    done = set(sandbox.state.invoices())
    assert 0 < len(done) <= BUDGET
    messages = [log.message for log in await logs_of(first.id)]
    said = [m for m in messages if m.startswith("AppZen daily budget spent: backfill")]
    assert said == [f"AppZen daily budget spent: {line}"], messages  # one line, once
    markdown = (await artifact_data("backfill-sample-erp-summary")).replace("\\", "")
    assert line in markdown
    today = BudgetPolicy(limit=BUDGET).day_of(datetime.now(UTC))
    assert "## Days" in markdown  # progress per AppZen day (tests/jobs/test_backfill_days.py)
    assert f"| 1 | {today} | " in markdown
    assert "not known yet (backfill --plan)" in markdown

    monkeypatch.setenv("APPZEN_DAILY_BUDGET", "100000")  # the next AppZen day's budget
    async with get_client() as client:  # and its start: the engine waits for a run's time
        await client.set_flow_run_state(
            scheduled.id, Scheduled(scheduled_time=datetime.now(UTC)), force=True
        )
        scheduled = await client.read_flow_run(scheduled.id)
    resumed = await _run(scheduled)

    assert resumed.is_completed(), resumed
    assert resumed.message is None or "resumes" not in resumed.message
    invoices = sandbox.state.invoices()
    assert set(invoices) == clean
    assert {record.versions for record in invoices.values()} == {1}  # nothing sent twice
    assert await _scheduled_runs_of(deployment_id) == []  # done: nothing more scheduled


async def _run(run: FlowRun, flow: Any = backfill) -> State[Any]:
    """Run the deployment's flow run ``run`` of ``flow`` in this process, as a worker would."""
    state = await run_flow_async(
        flow, flow_run=run, parameters=dict(run.parameters), return_type="state"
    )
    assert isinstance(state, State)
    return state


async def _scheduled_runs_of(deployment_id: UUID) -> list[FlowRun]:
    async with get_client() as client:
        runs = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    return [run for run in runs if run.state is not None and run.state.type == StateType.SCHEDULED]


async def test_a_lone_partition_out_of_budget_resumes_itself_unless_told_not_to(
    tiny_budget: Settings, sandbox: SandboxServer
) -> None:
    """A ``backfill-partition`` run started alone (no parent backfill) reschedules itself as the
    backfill does; with ``resume_next_day=False`` it ends Failed, schedules nothing, and says so."""
    deployment = await backfill_partition.ato_deployment(name="resume-partition")
    deployment_id = await deployment.aapply()
    parameters: dict[str, Any] = {
        "mapping": MAPPING,
        "since": "2023-12-31 23:59:59.999999",
        "until": "2025-01-31 23:59:59.999999",
        "index": 1,
        "global_limit": None,
    }
    resume_at = BudgetPolicy(limit=BUDGET).next_day(datetime.now(UTC))
    async with get_client() as client:
        off = await client.create_flow_run_from_deployment(
            deployment_id, parameters={**parameters, "resume_next_day": False}
        )

    stopped = await _run(off, backfill_partition)

    assert stopped.is_failed(), stopped
    assert await _scheduled_runs_of(deployment_id) == []
    messages = [log.message for log in await logs_of(off.id)]
    line = (
        "AppZen daily budget spent: backfill partition 1 does not reschedule itself "
        f"(resume_next_day is off); rerun it after {resume_at:%Y-%m-%d %H:%M} UTC to finish"
    )
    assert line in messages, messages

    async with get_client() as client:
        on = await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
    paused = await _run(on, backfill_partition)

    assert paused.is_completed(), paused
    [scheduled] = await _scheduled_runs_of(deployment_id)
    assert scheduled.parameters == on.parameters
    assert scheduled.expected_start_time is not None
    assert scheduled.expected_start_time.timestamp() == resume_at.timestamp()
    when = f"{resume_at:%Y-%m-%d %H:%M} UTC (flow run {scheduled.name})"
    assert paused.message == f"AppZen daily budget spent: partition 1 resumes {when}"
    assert len(sandbox.state.invoices()) <= BUDGET
