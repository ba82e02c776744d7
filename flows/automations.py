"""``python -m flows.automations``: install appzen-etl's Prefect automations on the server at
``PREFECT_API_URL``. Rerunning it updates them in place (found by name; duplicates removed).

- ``appzen-etl: crashed when heartbeats stop``: a flow run of appzen-etl whose heartbeats
  (``prefect.flow-run.heartbeat``, every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds, which
  prefect.yaml sets to 60) stop for ``HEARTBEAT_TIMEOUT`` seconds without a final state is set
  *Crashed*: its process or machine is gone. This is Prefect's documented pattern for such runs
  ("detect zombie flows"); the open-source server has no built-in equivalent.
- ``appzen-etl: nightly alert`` (when ``NOTIFICATION_BLOCK`` names a notification block): a
  ``nightly-sync`` flow run that ends *Failed*, *Crashed* (by the automation above too) or
  *Completed* with failed invoices (the flow then emits :data:`FAILED_INVOICES`) sends a message
  through that block (Slack, e-mail, a webhook, …).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.events import emit_event
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from pipeline.errors import ConfigurationError
from pipeline.settings import AutomationSettings, SettingsError, automation_settings
from pipeline.summary import RunSummary

FLOWS = (
    "nightly-sync",
    "status-sync",
    "backfill",
    "backfill-partition",
    "retry-failed",
    "writeback",
)
"""The flows prefect.yaml deploys (the automations touch only their runs)."""
NIGHTLY = "nightly-sync"
CRASH_DETECTION = "appzen-etl: crashed when heartbeats stop"
NIGHTLY_ALERT = "appzen-etl: nightly alert"
FAILED_INVOICES = "appzen-etl.invoices.failed"
"""Event a flow run emits when it completes with invoices that failed (not in AppZen)."""
HEARTBEAT = "prefect.flow-run.heartbeat"
ENDED = ("Completed", "Failed", "Cancelled", "Crashed", "TimedOut")
WAITING = ("AwaitingRetry", "Paused", "Suspended")  # no process beats while a run waits: not lost

SUBJECT = (
    "appzen-etl {{ flow.name }} {{ flow_run.name }}: "
    "{% if event.event == '" + FAILED_INVOICES + "' %}{{ event.payload.failed }} invoices failed"
    "{% else %}{{ flow_run.state.name }}{% endif %}"
)
BODY = (
    "{{ flow.name }} flow run {{ flow_run.name }} ({{ flow_run.id }}) "
    "{% if event.event == '" + FAILED_INVOICES + "' %}completed, but "
    "{{ event.payload.failed }} invoices failed in {{ event.payload.flow }} run "
    "{{ event.payload.run_id }} of the mapping {{ event.payload.mapping }}: they are not in "
    "AppZen. What to fix is in the run's failed-rows artifact, or in the report: "
    "appzen-etl report --run {{ event.payload.run_id }}"
    "{% else %}ended {{ flow_run.state.name }}: {{ flow_run.state.message }}{% endif %}\n"
    "{{ flow_run | ui_url }}"
)


def _our_flows(names: Sequence[str]) -> dict[str, object]:
    """``match_related``: events that concern a run of one of the flows ``names``."""
    return {"prefect.resource.role": "flow", "prefect.resource.name": list(names)}


def crash_detection(timeout: timedelta) -> AutomationCore:
    """Set *Crashed* a flow run of :data:`FLOWS` that sent a heartbeat and then, for ``timeout``,
    neither another one nor a final or waiting state."""
    return AutomationCore(
        name=CRASH_DETECTION,
        description=f"A running appzen-etl flow run without a heartbeat for "
        f"{timeout.total_seconds():.0f} s is Crashed (its process or machine is gone). "
        "Installed by python -m flows.automations.",
        trigger=EventTrigger(
            after={HEARTBEAT},
            expect={HEARTBEAT, *(f"prefect.flow-run.{state}" for state in (*ENDED, *WAITING))},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related=_our_flows(FLOWS),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timeout,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {timeout.total_seconds():.0f} s: the flow-run "
                "process or its machine is gone (appzen-etl crash detection). Run it again: "
                "staging takes over what it left.",
            )
        ],
    )


def nightly_alert(block_document_id: UUID) -> AutomationCore:
    """Notify through the block ``block_document_id`` when a nightly fails, crashes or completes
    with failed invoices."""
    return AutomationCore(
        name=NIGHTLY_ALERT,
        description="A nightly-sync flow run that failed, crashed or completed with failed "
        "invoices. Installed by python -m flows.automations (NOTIFICATION_BLOCK).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed", FAILED_INVOICES},
            match_related=_our_flows([NIGHTLY]),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def emit_failed_invoices(summaries: Sequence[RunSummary]) -> None:
    """Tell Prefect's automations (the nightly alert) about each run that left failed
    invoices: one :data:`FAILED_INVOICES` event per run, counts only (the flow run, its flow and
    deployment are attached as related resources by Prefect)."""
    for summary in summaries:
        if summary.failed and not summary.fatal:
            emit_event(
                FAILED_INVOICES,
                resource={
                    "prefect.resource.id": f"appzen-etl.run.{summary.run_id}",
                    "prefect.resource.name": f"{summary.flow} run {summary.run_id}",
                },
                payload={
                    "failed": summary.failed,
                    "run_id": summary.run_id,
                    "flow": summary.flow,
                    "mapping": summary.mapping,
                },
            )


async def notification_block_id(reference: str) -> UUID:
    """The id of the notification block ``type/name`` (read, not loaded: its secrets stay on the
    server); a clear error when it is missing or cannot notify."""
    block_type, name = reference.split("/", 1)
    async with get_client() as client:
        try:
            document = await client.read_block_document_by_name(name, block_type)
        except ObjectNotFound:
            raise ConfigurationError(
                f"NOTIFICATION_BLOCK={reference}: no block {name!r} of type {block_type!r} on "
                "the Prefect server; create it first (docs/prefect-server.md, Notifications)"
            ) from None
    schema = document.block_schema
    if schema is None or "notify" not in schema.capabilities:
        raise ConfigurationError(f"NOTIFICATION_BLOCK={reference} is not a notification block")
    return document.id


async def install(settings: AutomationSettings) -> list[str]:
    """Create or update the automations of ``settings`` on the server; one line each."""
    wanted = [crash_detection(timedelta(seconds=settings.heartbeat_timeout))]
    if settings.notification_block:
        wanted.append(nightly_alert(await notification_block_id(settings.notification_block)))
    lines = [await _put(automation) for automation in wanted]
    if not settings.notification_block:
        lines.append(f"{NIGHTLY_ALERT}: not installed (set NOTIFICATION_BLOCK to a block)")
    return lines


async def _put(automation: AutomationCore) -> str:
    """Update the automation of that name (removing any duplicate; paused stays paused), or
    create it."""
    async with get_client() as client:
        existing = await client.read_automations_by_name(automation.name)
        if not existing:
            await client.create_automation(automation)
            return f"{automation.name}: created"
        keep, *duplicates = existing
        # A paused automation (prefect automation pause, a maintenance window) stays paused.
        paused_or_not = automation.model_copy(update={"enabled": keep.enabled})
        await client.update_automation(keep.id, paused_or_not)
        for duplicate in duplicates:
            await client.delete_automation(duplicate.id)
        return f"{automation.name}: updated" + (
            f" ({len(duplicates)} duplicate(s) removed)" if duplicates else ""
        )


def main(argv: Sequence[str]) -> int:
    """Install from ``NOTIFICATION_BLOCK`` and ``HEARTBEAT_TIMEOUT``; exit 2 on a bad setting."""
    if argv:
        print("usage: python -m flows.automations   (settings: NOTIFICATION_BLOCK, "
              "HEARTBEAT_TIMEOUT; server: PREFECT_API_URL)", file=sys.stderr)  # fmt: skip
        return 2
    try:
        lines = asyncio.run(install(automation_settings()))
    except (ConfigurationError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
