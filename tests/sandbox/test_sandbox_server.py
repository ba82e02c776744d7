"""SandboxServer starts on a free port and stops leaving no thread or socket; serve() runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.devkit.sandbox import SandboxConfigError, SandboxServer, SandboxState, serve
from tests.sandbox.helpers import AUTH, body, make_invoice

ROOT = Path(__file__).resolve().parents[2]


def sandbox_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("appzen-sandbox-")]


def refuses_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_it_starts_on_a_free_port_and_stops_cleanly() -> None:
    before = sandbox_threads()
    with SandboxServer() as server:
        port = server.port
        assert server.root_url == f"http://127.0.0.1:{port}"
        assert server.base_url == f"http://127.0.0.1:{port}/dictionary-data-services"
        assert f"appzen-sandbox-{port}" in sandbox_threads()
        with httpx.Client(headers=AUTH) as client:
            response = client.post(
                server.base_url + "/invoice",
                content=body(make_invoice()),
                headers={"historical": "false"},
            )
        assert response.status_code == 201

    assert sandbox_threads() == before
    assert refuses_connections(port)


def test_it_stops_with_requests_still_in_flight() -> None:
    latency_s = 60.0
    with SandboxServer(latency_ms=latency_s * 1000) as server:
        port = server.port
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(b"GET /dictionary-data-services/x HTTP/1.1\r\nhost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while not server.state.accepted_times():
            assert time.monotonic() < deadline
            time.sleep(0.005)
        started = time.monotonic()
    stop_took = time.monotonic() - started
    client.close()

    assert stop_took < latency_s / 2  # it did not wait for the request's answer
    assert refuses_connections(port)


def test_two_servers_run_side_by_side_with_their_own_state() -> None:
    with SandboxServer() as one, SandboxServer(rate=1) as two:
        assert one.port != two.port
        assert one.state is not two.state
        assert two.state.knobs.rate == 1


def test_a_shared_state_object_can_be_served() -> None:
    state = SandboxState()
    with SandboxServer(state=state) as server:
        assert server.state is state


def test_state_and_knobs_together_are_refused() -> None:
    with pytest.raises(TypeError, match="either state= or knobs"):
        SandboxServer(state=SandboxState(), rate=5)


def test_urls_need_a_running_server_and_stop_is_idempotent() -> None:
    server = SandboxServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    server.stop()
    with server:
        pass
    server.stop()


def test_a_busy_port_is_reported() -> None:
    with SandboxServer() as server, pytest.raises(OSError, match="cannot listen on") as caught:
        SandboxServer(port=server.port).start()

    assert "port=0" in str(caught.value)


def test_bad_knobs_are_refused_before_anything_listens() -> None:
    with pytest.raises(SandboxConfigError, match="fail_rate"):
        SandboxServer(fail_rate=3)
    with pytest.raises(SandboxConfigError, match="latency_ms"):
        serve(port=free_port(), latency_ms=-5)


def test_serve_reports_a_busy_port() -> None:
    with SandboxServer() as server, pytest.raises(OSError, match="cannot listen on"):
        serve(port=server.port)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow  # the sandbox in a subprocess
def test_serve_runs_in_the_foreground_until_interrupted() -> None:
    port = free_port()
    code = f"from pipeline.devkit.sandbox import serve; serve(port={port}, rate=7, latency_ms=1)"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        state = wait_for_state(f"http://127.0.0.1:{port}/_sandbox/state", process)
        assert state["knobs"]["rate"] == 7
        assert state["knobs"]["latency_ms"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr.decode()


def wait_for_state(url: str, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, "serve() exited early"
        try:
            data: dict[str, Any] = httpx.get(url).json()
        except httpx.TransportError:
            assert time.monotonic() < deadline, "serve() did not come up within 20 s"
            time.sleep(0.05)
        else:
            return data
