"""Fault knobs over HTTP: quota (429 + Retry-After), latency, 500s, commit-then-fail and drops."""

from __future__ import annotations

import asyncio
import math
import time

import httpx
import pytest

from pipeline.devkit.sandbox import SandboxConfigError, SandboxServer
from tests.sandbox.helpers import AUTH, body, create, error_of, make_invoice, sync_body

NO_ANSWER = (httpx.RemoteProtocolError, httpx.ReadError)
"""What a dropped connection looks like to httpx: closed (FIN) or reset (RST) before any answer."""


def test_over_the_quota_answers_429_with_retry_after(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    sandbox.state.configure(rate=5)

    started = time.monotonic()
    responses = [create(appzen, make_invoice()) for _ in range(40)]
    elapsed = time.monotonic() - started
    statuses = [response.status_code for response in responses]

    accepted = len(statuses) - statuses.count(429)
    assert statuses[:5] == [201, 200, 200, 200, 200]  # the bucket starts full: 5 tokens
    assert accepted <= 5 + math.ceil(5 * elapsed)  # then 5 a second, however slow the client
    assert 429 in statuses, f"40 requests in {elapsed:.1f} s were all accepted at 5/s"
    refused = responses[statuses.index(429)]
    assert "Rate limit exceeded" in error_of(refused, 429).detail
    assert refused.headers["retry-after"] == "1"
    stored = sandbox.state.invoice("INV-1")
    assert stored is not None
    assert stored.versions == accepted


def test_retry_after_is_whole_seconds_until_a_token_is_back(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    sandbox.state.configure(rate=0.25)

    assert appzen.get("/nowhere").status_code == 404
    refused = appzen.get("/nowhere")

    error_of(refused, 429)
    assert refused.headers["retry-after"] == "4"


def test_the_quota_is_checked_before_auth(sandbox: SandboxServer) -> None:
    sandbox.state.configure(rate=1)
    with httpx.Client(base_url=sandbox.base_url) as client:
        first = client.post("/invoice", content=b"{}")
        second = client.post("/invoice", content=b"{}")

    error_of(first, 401)
    error_of(second, 429)


def test_the_achieved_rate_stays_under_the_quota(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    rate = 20.0  # low enough that even a busy machine sends faster: some must be refused
    sandbox.state.configure(rate=rate)
    deadline = time.monotonic() + 10
    while len(sandbox.state.accepted_times()) < 50:
        assert time.monotonic() < deadline, "the sandbox stopped accepting requests"
        appzen.get("/nowhere")

    times = sandbox.state.accepted_times()
    burst = int(rate)  # the bucket starts full: capacity max(1, rate)
    after_burst = (len(times) - burst) / (times[-1] - times[0])
    assert after_burst <= rate * 1.15
    counts = sandbox.state.response_counts()
    assert counts[404] == len(times)
    assert counts[429] > 0


def test_rate_none_lifts_the_quota(sandbox: SandboxServer, appzen: httpx.Client) -> None:
    sandbox.state.configure(rate=1)
    sandbox.state.configure(rate=None)

    statuses = {appzen.get("/nowhere").status_code for _ in range(20)}

    assert statuses == {404}


def test_fail_rate_one_answers_500_without_processing(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    uuid = create(appzen, make_invoice("INV-1")).json()["uuid"]
    sandbox.state.configure(fail_rate=1.0)

    created = create(appzen, make_invoice("INV-2"))
    synced = appzen.post(f"/invoice/{uuid}/status-sync", content=body(sync_body()))

    error_of(created, 500)
    error_of(synced, 500)
    assert set(sandbox.state.invoices()) == {"INV-1"}
    assert sandbox.state.pushes() == []


def statuses_with_seed(sandbox: SandboxServer, client: httpx.Client, seed: int) -> list[int]:
    sandbox.state.reset()
    sandbox.state.configure(fail_rate=0.5, seed=seed)
    return [client.get("/nowhere").status_code for _ in range(24)]


def test_faults_follow_the_seed(sandbox: SandboxServer, appzen: httpx.Client) -> None:
    first = statuses_with_seed(sandbox, appzen, seed=7)
    again = statuses_with_seed(sandbox, appzen, seed=7)
    other = statuses_with_seed(sandbox, appzen, seed=8)

    assert first == again
    assert first != other
    assert set(first) == {404, 500}


def test_commit_then_fail_stores_the_invoice_but_answers_500(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    sandbox.state.configure(commit_then_fail_rate=1.0)

    failed = create(appzen, make_invoice("INV-1"))
    stored = sandbox.state.invoice("INV-1")
    sandbox.state.configure(commit_then_fail_rate=0.0)
    resent = create(appzen, make_invoice("INV-1"))

    error_of(failed, 500)
    assert stored is not None
    assert resent.status_code == 200
    assert resent.json() == {"uuid": stored.uuid, "status": "UPDATED"}


def test_commit_then_fail_records_the_status_sync_but_answers_500(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    uuid = create(appzen, make_invoice("INV-1")).json()["uuid"]
    sandbox.state.configure(commit_then_fail_rate=1.0)

    response = appzen.post(f"/invoice/{uuid}/status-sync", content=body(sync_body()))

    error_of(response, 500)
    assert len(sandbox.state.pushes()) == 1


def test_drop_closes_the_connection_without_an_answer(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    sandbox.state.configure(drop_rate=1.0)

    with pytest.raises(NO_ANSWER):
        create(appzen, make_invoice("INV-1"))
    sandbox.state.configure(drop_rate=0.0)
    after = create(appzen, make_invoice("INV-2"))

    assert sandbox.state.dropped() == 1
    assert after.status_code == 201
    assert set(sandbox.state.invoices()) == {"INV-2"}
    assert sum(sandbox.state.response_counts().values()) == 1


def test_commit_then_drop_stores_the_invoice_and_closes_the_connection(
    sandbox: SandboxServer, appzen: httpx.Client
) -> None:
    sandbox.state.configure(commit_then_drop_rate=1.0)

    with pytest.raises(NO_ANSWER):
        create(appzen, make_invoice("INV-1"))

    assert set(sandbox.state.invoices()) == {"INV-1"}
    assert sandbox.state.dropped() == 1


async def test_latency_overlaps_across_concurrent_requests(
    sandbox: SandboxServer, appzen_async: httpx.AsyncClient
) -> None:
    sandbox.state.configure(latency_ms=200)

    async def timed(n: int) -> float:
        started = time.monotonic()
        response = await appzen_async.post(
            "/invoice", content=body(make_invoice(f"INV-{n}")), headers={"historical": "false"}
        )
        assert response.status_code == 201
        return time.monotonic() - started

    started = time.monotonic()
    durations = await asyncio.gather(*(timed(n) for n in range(20)))
    wall = time.monotonic() - started

    assert min(durations) >= 0.2
    assert wall < sum(durations) / 4  # one after the other, the wall time would be their sum
    accepted = sandbox.state.accepted_times()
    assert len(accepted) == 20
    assert accepted[-1] - accepted[0] < min(durations)  # all admitted before the first answered


def test_a_latency_spike_delays_the_answer(sandbox: SandboxServer, appzen: httpx.Client) -> None:
    sandbox.state.configure(latency_spike_rate=1.0, latency_spike_ms=150)

    started = time.monotonic()
    response = appzen.get("/nowhere")

    assert time.monotonic() - started >= 0.15
    error_of(response, 404)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"fail_rate": 1.5}, "fail_rate", id="probability-over-1"),
        pytest.param({"drop_rate": -0.1}, "drop_rate", id="negative-probability"),
        pytest.param({"rate": 0}, "rate", id="zero-rate"),
        pytest.param({"latency_ms": -1}, "latency_ms", id="negative-latency"),
        pytest.param({"fail_rat": 0.5}, "fail_rat", id="unknown-knob"),
    ],
)
def test_invalid_knobs_are_refused_and_leave_the_knobs_unchanged(
    sandbox: SandboxServer, changes: dict[str, object], field: str
) -> None:
    before = sandbox.state.knobs

    with pytest.raises(SandboxConfigError) as caught:
        sandbox.state.configure(**changes)

    assert str(caught.value).startswith(f"invalid sandbox knobs: {field}: ")
    assert sandbox.state.knobs == before


def test_knobs_given_at_construction_apply_and_survive_reset() -> None:
    with SandboxServer(fail_rate=1.0) as server, httpx.Client(headers=AUTH) as client:
        first = client.get(server.base_url + "/nowhere")
        server.state.configure(fail_rate=0.0)
        server.state.reset()
        after_reset = client.get(server.base_url + "/nowhere")

    error_of(first, 500)
    error_of(after_reset, 500)


async def test_drops_among_concurrent_requests_hit_only_their_own_connection(
    sandbox: SandboxServer, appzen_async: httpx.AsyncClient
) -> None:
    sandbox.state.configure(drop_rate=0.3, seed=11, latency_ms=20)

    async def send(n: int) -> int | None:
        try:
            response = await appzen_async.post(
                "/invoice", content=body(make_invoice(f"INV-{n}")), headers={"historical": "true"}
            )
        except NO_ANSWER:
            return None
        return response.status_code

    outcomes = await asyncio.gather(*(send(n) for n in range(60)))

    dropped = outcomes.count(None)
    assert 0 < dropped < 60
    assert sandbox.state.dropped() == dropped
    assert set(outcomes) - {None} == {201}
    assert len(sandbox.state.invoices()) == 60 - dropped
