"""docs/prefect-server.md as a script: its command blocks, how each is run, and a runner that
runs them in order in a fresh copy of the checkout (terminals as processes of
:mod:`tests.flows.prefect_processes`).

Each ``sh`` code block of the page follows a comment ``<!-- walkthrough: ACTION ... -->``:
``run LABEL`` (must exit 0), ``fails LABEL`` (must not), ``env`` (sourced before every later
block, as "in every terminal"), ``start NAME [elsewhere]`` (a long-running terminal; ``elsewhere``:
outside the checkout), ``skip REASON``; ``stop NAME...`` stands alone (Ctrl-C in those terminals).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.flows.prefect_processes import QUIET, Process, start, stop, wait_until

MARK = re.compile(r"^<!-- walkthrough: (\w[\w-]*)(?: (.*?))? -->$")
ACTIONS = {"run", "fails", "env", "start", "stop", "skip"}


@dataclass(frozen=True)
class Block:
    """One command block of the page and how to run it."""

    action: str
    label: str
    code: str
    elsewhere: bool = False


def blocks(text: str) -> list[Block]:
    """The page's command blocks in order; every ``sh`` block must carry a walkthrough comment."""
    found: list[Block] = []
    lines = text.splitlines()
    pending: tuple[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        mark = MARK.match(line)
        if mark:
            action, rest = mark.group(1), mark.group(2) or ""
            if action not in ACTIONS:
                raise ValueError(f"unknown walkthrough action: {line}")
            if action == "stop":
                found.append(Block("stop", rest, ""))
            else:
                pending = (action, rest)
        elif line.startswith("```sh"):
            if pending is None:
                raise ValueError(f"a command block without a walkthrough comment: line {index + 1}")
            end = lines.index("```", index + 1)
            action, rest = pending
            words = rest.split()
            label = rest if action == "skip" else (words[0] if words else "")
            code = "\n".join(lines[index + 1 : end]) + "\n"
            found.append(Block(action, label, code, elsewhere="elsewhere" in words[1:]))
            pending, index = None, end
        index += 1
    return found


def substitute(code: str, replacements: list[tuple[str, str]]) -> str:
    """``code`` with each ``(old, new)`` replaced, in order."""
    for old, new in replacements:
        code = code.replace(old, new)
    return code


def fresh_copy(repo: Path, target: Path) -> Path:
    """The checkout's files as a clone has them (tracked and new, not ignored: no .venv, .state
    or .env), plus a link to its uv (``.tools``, which ``make install`` would otherwise fetch)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = repo / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".tools").symlink_to((repo / ".tools").resolve())
    return target


def shell_env(home: Path) -> dict[str, str]:
    """A new terminal's environment: no Prefect or appzen-etl settings, no venv on ``PATH``; the
    operator's Prefect profile in ``home``; workers that poll every second; no scheduler."""
    settings = ("PREFECT_", "APPZEN_", "ERP_", "STAGING_", "REPORTS_", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(settings)}
    path = [p for p in env.get("PATH", "/usr/bin:/bin").split(":") if not p.endswith(".venv/bin")]
    return {
        **env,
        **QUIET,
        "PATH": ":".join(path),
        "PREFECT_HOME": str(home),  # the operator's own Prefect profile, not ~/.prefect
        "UV_PYTHON_DOWNLOADS": "never",
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # workers poll every second, not every 10 s (speed)
        # No scheduled runs: status-sync's cron (every two hours on office days) would otherwise
        # start a run of its own mid-walkthrough and push what the page's runs are about to push.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    }


@dataclass
class Walkthrough:
    """Runs blocks in order: the ``env`` blocks seen so far open every later block's script."""

    checkout: Path
    elsewhere: Path
    folder: Path
    env: dict[str, str]
    ready: dict[str, Callable[[Process], bool]]
    outputs: dict[str, str] = field(default_factory=dict)
    terminals: dict[str, Process] = field(default_factory=dict)
    prelude: list[str] = field(default_factory=list)

    def script(self, block: Block) -> list[str]:
        return ["bash", "-c", "\n".join(["set -eo pipefail", *self.prelude, block.code])]

    def cwd(self, block: Block) -> Path:
        return self.elsewhere if block.elsewhere else self.checkout

    def do(self, block: Block) -> None:
        """Run one block as its action says."""
        if block.action == "env":
            self.prelude.append(block.code)
        elif block.action in {"run", "fails"}:
            self.run(block)
        elif block.action == "start":
            self.start(block)
        elif block.action == "stop":
            for name in block.label.split():
                interrupt(self.terminals[name])

    def run(self, block: Block) -> None:
        began = time.monotonic()
        done = subprocess.run(
            self.script(block), cwd=self.cwd(block), env=self.env, capture_output=True,
            text=True, timeout=400, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        self.outputs[block.label] = output
        print(f"walkthrough {block.label}: {time.monotonic() - began:.0f} s")  # in the report
        failed = done.returncode != 0
        if failed != (block.action == "fails"):
            raise AssertionError(
                f"walkthrough block {block.label!r} ({block.action}) exited {done.returncode}:"
                f"\n{block.code}\n{output}\n{self.tails()}"
            )

    def start(self, block: Block) -> None:
        name = block.label
        process = start(name, self.script(block), self.env, self.folder, self.cwd(block))
        self.terminals[name] = process

        def up() -> bool:
            if process.popen.poll() is not None:
                raise AssertionError(f"terminal {name} exited\n{block.code}\n{process.tail()}")
            return self.ready[name](process)

        began = time.monotonic()
        wait_until(up, 240, f"terminal {name} ready")
        print(f"walkthrough {name}: ready in {time.monotonic() - began:.0f} s")

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.terminals.values())

    def stop_all(self) -> None:
        """Workers first (the last started), then the sandbox and the server."""
        for process in reversed(list(self.terminals.values())):
            stop(process)


def interrupt(process: Process, seconds: float = 20.0) -> None:
    """Ctrl-C in a terminal: SIGINT to its process group; then :func:`stop` if still running."""
    if process.popen.poll() is None:
        os.killpg(process.popen.pid, signal.SIGINT)
        try:
            process.popen.wait(seconds)
        except subprocess.TimeoutExpired:
            stop(process)


def logged(text: str) -> Callable[[Process], bool]:
    """Ready once ``text`` is in the terminal's output."""
    return lambda process: text in process.log.read_text(errors="replace")


def listening(port: int) -> Callable[[Process], bool]:
    """Ready once something accepts connections on the loopback ``port``."""

    def check(_: Process) -> bool:
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    return check
