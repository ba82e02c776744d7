"""Every command explains itself with an example; the live progress line appears on a terminal
(with current rate and ETA) and never on a pipe; ``appzen-etl sandbox`` serves in the foreground."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from typer.main import get_command

from pipeline.cli import app
from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import (
    APPZEN_ETL,
    FLAT_MAPPING,
    Project,
    clean_environment,
    invoice_row,
)

DEADLINE_S = 60.0
POLL_S = 0.05


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, as the words that name it (root first)."""
    paths: list[tuple[str, ...]] = [()]

    def walk(group: object, prefix: tuple[str, ...]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            paths.append((*prefix, name))
            walk(command, (*prefix, name))

    walk(get_command(app), ())
    return paths


def test_every_command_has_help_with_an_example(tmp_path: Path) -> None:
    paths = _command_paths()
    named = {" ".join(path) for path in paths}
    assert {"sync", "backfill", "retry-failed", "status-sync", "runs", "report"} <= named
    assert {"preview", "mapping", "mapping check", "demo", "sandbox"} <= named
    project = Project.create(tmp_path, "http://127.0.0.1:9/dictionary-data-services")
    results = project.run_many(*(((*path, "--help"), None) for path in paths))
    for path, result in zip(paths, results, strict=True):
        assert result.code == 0, result
        assert result.stderr == "", result
        assert f"Usage: appzen-etl {' '.join(path)}".rstrip() in result.stdout, result
        assert "Example" in result.stdout, f"no example in the help of {path}:\n{result}"
    json_commands = {"sync", "backfill", "retry-failed", "status-sync", "runs", "report"}
    for path, result in zip(paths, results, strict=True):
        if " ".join(path) in json_commands | {"mapping check"}:
            assert "--json" in result.stdout, result


def _read_terminal(master: int, process: subprocess.Popen[str]) -> str:
    """Everything written to the pseudo-terminal until the process ends (deadline-bound)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_progress_is_live_on_a_terminal_and_stdout_stays_json(
    project: Project, sandbox: SandboxServer
) -> None:
    project.write_invoices([invoice_row(f"P-{n:02}") for n in range(12)])
    env = clean_environment(
        project.env | {"BATCH_SIZE": "4", "TERM": "xterm-256color", "COLUMNS": "160"}
    )
    master, slave = pty.openpty()
    try:
        with subprocess.Popen(
            [str(APPZEN_ETL), "sync", "-m", str(FLAT_MAPPING), "--json", "--no-status-sync"],
            cwd=project.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        ) as process:
            os.close(slave)
            slave = -1
            terminal = _read_terminal(master, process)
            stdout, _ = process.communicate(timeout=DEADLINE_S)
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    assert process.returncode == 0, terminal
    assert "(flat_csv): extracted 12 · sent 12" in terminal
    assert "requests/s" in terminal
    assert json.loads(stdout)["runs"][0]["counts"]["created"] == 12
    assert len(sandbox.state.invoices()) == 12


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_sandbox_command_serves_until_stopped(tmp_path: Path) -> None:
    free_port = _free_port()
    with subprocess.Popen(
        [str(APPZEN_ETL), "sandbox", "--port", str(free_port)],
        cwd=tmp_path,
        env=clean_environment({}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            state = _poll_state(f"http://127.0.0.1:{free_port}/_sandbox/state", process)
        finally:
            process.terminate()
            stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert state["knobs"]["rate"] is None
    assert f"AppZen sandbox on http://127.0.0.1:{free_port}/dictionary-data-services" in stdout
    url = f"http://127.0.0.1:{free_port}/dictionary-data-services"
    assert f"APPZEN_BASE_URL={url} APPZEN_SANDBOX=true" in stdout
    assert "Traceback" not in stderr


def _poll_state(url: str, process: subprocess.Popen[str]) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sandbox command ended early"
        try:
            answer = httpx.get(url, timeout=1.0)
        except httpx.TransportError:
            time.sleep(POLL_S)  # not listening yet: poll again
            continue
        assert answer.status_code == 200, answer.text
        state: dict[str, Any] = answer.json()
        return state
    raise AssertionError(f"the sandbox did not answer {url} within {DEADLINE_S} s")
