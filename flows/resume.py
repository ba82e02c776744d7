"""Backfills that span days: a backfill flow run stopped by the spent daily AppZen budget
schedules a new flow run of its own deployment, with the same parameters, at the start of the
next AppZen day (:func:`~pipeline.jobs.backfill.budget_resumes`), and so on until done.

The new run sends only what is still pending: staging remembers what AppZen acknowledged, so no
invoice goes twice. A flow run that rescheduled itself ends **Completed** with a message saying
when it resumes (a budget pause is the plan working, not a failure to alert on every night of a
week-long backfill); with ``resume_next_day=False``, or when it was not run from a deployment
(a plain local flow call: there is nothing to schedule), it ends Failed as any stopped run does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.states import Scheduled

from pipeline.jobs.backfill import budget_resumes
from pipeline.settings import Settings


@dataclass(frozen=True, slots=True)
class Resumption:
    """What a budget-stopped flow run did about it: ``flow_run`` (the name of the run scheduled
    at ``at``), or None with ``reason`` saying why nothing was scheduled."""

    at: datetime
    zone: str
    flow_run: str | None = None
    reason: str = ""

    @property
    def when(self) -> str:
        """``YYYY-MM-DD HH:MM zone``."""
        return f"{self.at:%Y-%m-%d %H:%M} {self.zone}"

    def line(self, what: str) -> str:
        """The one line (log, artifact, final state's message) about ``what`` resuming."""
        if self.flow_run is not None:
            return (
                f"AppZen daily budget spent: {what} resumes {self.when} (flow run {self.flow_run})"
            )
        return (
            f"AppZen daily budget spent: {what} does not reschedule itself ({self.reason}); "
            f"rerun it after {self.when} to finish"
        )


async def resume_next_day(settings: Settings, what: str, enabled: bool) -> Resumption:
    """Schedule this flow run's deployment again, same parameters, at the next AppZen day's
    start (when ``enabled`` and the run came from a deployment), and log one INFO line saying
    when it resumes. Idempotent per flow run (a retried run schedules one resumption)."""
    at, zone = budget_resumes(settings, datetime.now(UTC))
    context = FlowRunContext.get()
    run = context.flow_run if context is not None else None
    logger = get_run_logger()
    if not enabled:
        resumption = Resumption(at, zone, reason="resume_next_day is off")
    elif run is None or run.deployment_id is None:
        resumption = Resumption(at, zone, reason="not run from a deployment")
    else:
        async with get_client() as client:
            scheduled = await client.create_flow_run_from_deployment(
                run.deployment_id,
                parameters=dict(run.parameters),
                state=Scheduled(scheduled_time=at),
                idempotency_key=f"resume-after-budget-{run.id}",
                tags=list(run.tags),
            )
        resumption = Resumption(at, zone, flow_run=scheduled.name)
    logger.log(logging.INFO if resumption.flow_run else logging.WARNING, resumption.line(what))
    return resumption
