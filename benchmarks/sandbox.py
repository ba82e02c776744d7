"""The AppZen sandbox in its own process (so it never shares the benchmark's GIL), driven by pipe.

The child (``python -m benchmarks.sandbox``) starts a
:class:`~pipeline.devkit.sandbox.SandboxServer` on a free loopback port, prints ``{"port": P}`` and
then answers one JSON line per command read from stdin: ``counts`` (responses by status, accepted
request times; no invoice bodies, so it stays cheap with 100,000 invoices stored), ``seed`` (store
stub invoices as creates would, answer their uuids), ``configure`` (knobs), ``reset`` and ``stop``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Self

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Counts:
    """What the sandbox answered since its last reset."""

    responses: dict[int, int]
    accepted_times: list[float]
    stored: int

    @property
    def total(self) -> int:
        """Every AppZen response, whatever its status."""
        return sum(self.responses.values())

    @property
    def throttled(self) -> int:
        """Responses 429."""
        return self.responses.get(429, 0)

    def since(self, before: Counts) -> Counts:
        """What was answered after ``before`` was read (the stored invoices as now)."""
        responses = {
            code: n - before.responses.get(code, 0)
            for code, n in self.responses.items()
            if n - before.responses.get(code, 0)
        }
        return Counts(responses, self.accepted_times[len(before.accepted_times) :], self.stored)

    def steady_rate(self, burst: int = 0) -> float:
        """Accepted requests per second between the first and the last accepted one, the first
        ``burst`` (the token bucket's initial credit) left out; 0 with fewer than 2 left."""
        times = self.accepted_times[burst:]
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])


class SandboxProcess:
    """``with SandboxProcess(rate=50, latency_ms=100) as sandbox: sandbox.base_url``."""

    def __init__(self, **knobs: Any) -> None:
        self.knobs = knobs
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self.port = 0

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The AppZen API root of the sandbox."""
        return self.root_url + "/dictionary-data-services"

    def __enter__(self) -> Self:
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sandbox", json.dumps(self.knobs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
        )
        hello = self._answer()
        self.port = int(hello["port"])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        self._proc = None
        if proc is not None:
            try:
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                    proc.stdin.flush()
                proc.wait(STOP_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()

    def counts(self) -> Counts:
        """Responses and accepted times since the last reset."""
        data = self._command("counts")
        responses = {int(code): int(n) for code, n in data["responses"].items()}
        return Counts(responses, [float(t) for t in data["accepted_times"]], int(data["stored"]))

    def reset(self) -> None:
        """Forget every invoice and count; back to the knobs it started with."""
        self._command("reset")

    def seed(self, invoice_ids: list[str]) -> dict[str, str]:
        """Store these invoices (a stub body each) as creates would; their uuids by id."""
        uuids: dict[str, str] = self._command("seed", invoice_ids=invoice_ids)["uuids"]
        return uuids

    def pushes(self) -> list[str]:
        """The invoice id of every status-sync the sandbox accepted, in order."""
        pushed: list[str] = self._command("pushes")["pushes"]
        return pushed

    def configure(self, **knobs: Any) -> None:
        """Change some knobs (``rate=None`` lifts the quota)."""
        self._command("configure", knobs=knobs)

    def _command(self, op: str, **args: Any) -> dict[str, Any]:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise RuntimeError("the sandbox process is not running: use it as a context manager")
        proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        proc.stdin.flush()
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox process exited: {self._stderr()}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"sandbox process: {answer['error']}")
        return answer

    def _stderr(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:]


def _child(knobs: dict[str, Any]) -> None:
    from pipeline.devkit.sandbox import SandboxServer  # noqa: PLC0415 - only the child serves
    from pipeline.devkit.sandbox.knobs import SandboxConfigError  # noqa: PLC0415

    with SandboxServer(**knobs) as server:
        _say({"port": server.port})
        state = server.state
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "stop":
                _say({"stopped": True})
                return
            try:
                if op == "reset":
                    state.reset()
                elif op == "configure":
                    state.configure(**command["knobs"])
                elif op == "seed":
                    _say({"uuids": _seed(state, command["invoice_ids"])})
                    continue
                elif op == "pushes":
                    _say({"pushes": [push.invoice_id for push in state.pushes()]})
                    continue
                _say(
                    {
                        "responses": state.response_counts(),
                        "accepted_times": state.accepted_times() if op == "counts" else [],
                        "stored": len(state.invoices()),
                    }
                )
            except SandboxConfigError as error:
                _say({"error": str(error)})


def _seed(state: Any, invoice_ids: list[str]) -> dict[str, str]:
    return {
        key: state.upsert(key, {"invoice_id": key}, historical=True).uuid for key in invoice_ids
    }


def _say(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    _child(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
