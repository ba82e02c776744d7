"""Real Prefect processes for the scale-out test: a server on a free loopback port (its own
``PREFECT_HOME`` and a throwaway PostgreSQL database), workers, and the ``prefect`` CLI."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.databases import PG_ADMIN, admin_engine

PREFECT = str(Path(sys.executable).with_name("prefect"))
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_CLI_WRAP_LINES": "false",
}


IDLE_SERVICES = (
    "SCHEDULER",  # nothing runs unless the test starts it
    "LATE_RUNS",
    "FOREMAN",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "CANCELLATION_CLEANUP",
    "TRIGGERS",
    "EVENT_PERSISTER",
    "DB_VACUUM",
)
"""Server services the test does not need (two cores are shared with the workers' runs)."""


@dataclass(frozen=True)
class Process:
    """A started process, its log file and what it is (for messages)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        """The end of its log, for a failure message."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A port nothing listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {seconds:.0f} s")
        time.sleep(0.2)


def start(name: str, args: list[str], env: dict[str, str], folder: Path, cwd: Path) -> Process:
    """Start ``args`` in its own process group, output to ``folder/name.log``."""
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log)


def stop(process: Process, seconds: float = 20.0) -> None:
    """SIGTERM to the process group we started, SIGKILL if it has not exited in ``seconds``."""
    if process.popen.poll() is not None:
        return
    os.killpg(process.popen.pid, signal.SIGTERM)
    try:
        process.popen.wait(seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait(seconds)


def descendants(pid: int) -> list[int]:
    """The processes started by ``pid``, their children and so on (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it exited meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_machine(process: Process) -> list[int]:
    """SIGKILL ``process`` and every process it started, as a lost machine would: nothing gets
    to clean up or report. The pids killed besides ``process``."""
    others = descendants(process.popen.pid)
    for pid in [process.popen.pid, *others]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.popen.wait(30)
    return others


def run_cli(args: list[str], env: dict[str, str], cwd: Path, seconds: float = 90.0) -> str:
    """Run a ``prefect`` command to the end; its output, or a failure naming the command."""
    done = subprocess.run(
        [PREFECT, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=seconds,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"prefect {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


@contextmanager
def prefect_database(prefix: str = "prefect_test") -> Iterator[str]:
    """A new PostgreSQL database for a Prefect server (asyncpg URL), dropped afterwards."""
    admin = admin_engine(PG_ADMIN)
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def prefect_server(
    folder: Path, database_url: str, cwd: Path, services: Sequence[str] = ()
) -> Iterator[str]:
    """``prefect server start`` on a free loopback port, without the :data:`IDLE_SERVICES` not
    named in ``services`` (e.g. ``TRIGGERS`` for automations); its API URL once healthy. Stop the
    workers before leaving."""
    port = free_port()
    env = {
        **os.environ,
        **QUIET,
        "PREFECT_HOME": str(folder / "server-home"),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        **{
            f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false"
            for name in IDLE_SERVICES
            if name not in services
        },
    }
    env.pop("PREFECT_API_URL", None)
    args = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = start("server", [*args, "--analytics-off"], env, folder, cwd)
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        if server.popen.poll() is not None:
            raise AssertionError("the Prefect server exited\n" + server.tail())
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, 90, "the Prefect server answering /api/health")
        yield url
    finally:
        stop(server)


def client_env(api_url: str, home: Path, extra: dict[str, str]) -> dict[str, str]:
    """The environment of a CLI call or worker talking to the server at ``api_url``."""
    return {**os.environ, **QUIET, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home), **extra}
