"""The whole pipeline (extract → map → post → status-sync) against a sandbox that misbehaves:
injected 500s, 429 storms, latency spikes past the read timeout, dropped connections, and answers
lost after the invoice or status was stored. Each scenario runs two nightly rounds under the
fault (the ERP changes in between), then reruns until nothing is left, and checks every promise
of docs/guarantees.md."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from pipeline.devkit.sample_erp import touch
from pipeline.devkit.sandbox import Credentials, SandboxServer
from tests.reliability.checks import assert_all, assert_no_unacknowledged_send, staged
from tests.reliability.world import World, poll, settle

pytestmark = pytest.mark.reliability


@dataclass(frozen=True, slots=True)
class Fault:
    """Sandbox knobs for the faulty rounds, and what the sandbox must have done under them."""

    knobs: dict[str, Any]
    happened: Callable[[World], bool]
    attempts: int | None = None
    """Attempts per request during the faulty rounds (default: the scenario settings')."""
    window: float | None = None
    """APPZEN_OUTAGE_WINDOW during the faulty rounds (default: the scenario settings')."""


def _answered(status: int) -> Callable[[World], bool]:
    return lambda world: world.sandbox.state.response_counts().get(status, 0) > 0


def _dropped(world: World) -> bool:
    return world.sandbox.state.dropped() > 0


def _outage(world: World) -> bool:
    """The circuit breaker stopped the runs, and no invoice was written off as failed."""
    stopped = [summary for summary in world.summaries if summary.outage]
    return bool(stopped) and world.counted("failed_retries") == 0


def _timed_out(world: World) -> bool:
    """Some request outlived the read timeout and was retried (nothing else fails here)."""
    return world.counted("retries") > 0


FAULTS = {
    "500s": Fault({"fail_rate": 0.10}, _answered(500)),
    "429 storm": Fault({"rate": 40.0}, _answered(429)),
    "latency spikes": Fault(
        {"latency_spike_rate": 0.05, "latency_spike_ms": 1_300.0, "latency_ms": 2.0},
        _timed_out,
    ),
    "dropped connections": Fault({"drop_rate": 0.08}, _dropped),
    # tuned window (1 s); tests/load/test_sync_outage.py holds the twins at the default
    "an outage": Fault({"fail_rate": 1.0}, _outage, attempts=3, window=1.0),
    "stored then 500": Fault({"commit_then_fail_rate": 0.10}, _answered(500)),
    "stored then dropped": Fault({"commit_then_drop_rate": 0.10}, _dropped),
    "everything at once": Fault(
        {
            "fail_rate": 0.04,
            "drop_rate": 0.03,
            "commit_then_fail_rate": 0.04,
            "commit_then_drop_rate": 0.04,
            "latency_spike_rate": 0.02,
            "latency_spike_ms": 1_300.0,
        },
        lambda world: _dropped(world) and _answered(500)(world),
    ),
}


def refuse_one_supplier(world: World) -> str:
    """Make the sandbox refuse (400) every invoice of one supplier, as AppZen does for a
    supplier it does not know; the supplier id."""
    suppliers = sorted({str(m.invoice.supplier_id) for m in world.expected().valid.values()})
    world.unknown_suppliers = frozenset(suppliers[:1])
    world.sandbox.state.configure(unknown_suppliers=sorted(world.unknown_suppliers))
    return suppliers[0]


@pytest.mark.parametrize("name", FAULTS)
def test_every_promise_holds_under_a_faulty_appzen(world: World, name: str) -> None:
    fault = FAULTS[name]
    refuse_one_supplier(world)
    world.sandbox.state.configure(seed=len(name), **fault.knobs)
    patient = world.settings
    if fault.attempts is not None:
        world.settings = world.settings.model_copy(update={"appzen_retry_attempts": fault.attempts})
    if fault.window is not None:
        world.settings = world.settings.model_copy(update={"appzen_outage_window": fault.window})

    world.nightly()
    touch(world.erp_url, count=12, seed=3)
    world.nightly()
    settle(world.sandbox)
    world.settings = patient

    assert_no_unacknowledged_send(world.store, world.sandbox)
    assert fault.happened(world), f"{name}: the fault never fired"
    world.sandbox.state.configure(**{key: _off(key) for key in fault.knobs})
    world.until_done()
    assert_all(world, failed=sum(summary.outage for summary in world.summaries))
    stored = world.sandbox.state.invoices()
    resent = world.counted("resent_after_lost_answer") + world.counted("resent_after_other_worker")
    created = world.counted("created") + resent
    assert created == len(stored), "each invoice created once; a lost create's resend counted"
    assert world.counted("resent_after_other_worker") == 0  # every resend had a cause here
    assert world.counted("resent_after_crash") == 0, "no run crashed here"


def _off(knob: str) -> Any:
    return None if knob == "rate" else 0.0


def test_credentials_revoked_mid_run_stop_it_and_leave_only_acknowledged_sends(
    world: World,
) -> None:
    world.sandbox.state.configure(latency_ms=5.0)
    revoke = threading.Thread(target=_revoke_after, args=(world.sandbox, 15))
    revoke.start()
    try:
        stopped = world.nightly()
    finally:
        revoke.join()
    settle(world.sandbox)

    [synced] = stopped  # no status-sync after a fatal stop
    assert synced.status == "failed"
    fatal = synced.fatal or ""
    assert "HTTP 401" in fatal
    assert "check APPZEN_API_KEY, APPZEN_CUSTOMER_ID and APPZEN_CUSTOMER_KEY" in fatal
    assert_no_unacknowledged_send(world.store, world.sandbox)
    records = staged(world.store).values()
    assert all(r.claimed_by is None for r in records), "a fatal stop frees its claims at once"
    assert {r.state for r in records if r.uuid is None} == {"pending"}
    assert synced.counts["left_pending"] > 0

    world.sandbox.state.credentials = Credentials()
    world.until_done()
    assert_all(world, failed=1)


def _revoke_after(sandbox: SandboxServer, stored: int) -> None:
    """Once AppZen holds ``stored`` invoices, the API key stops working (401 from then on)."""
    poll(lambda: len(sandbox.state.invoices()) >= stored, 30, f"{stored} invoices stored")
    sandbox.state.credentials = Credentials(api_key="revoked-key")
