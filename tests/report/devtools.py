"""A headless Chromium driven over the DevTools protocol, for tests that use a page as a person
would (type, choose, look) and then read its DOM or take a screenshot.

No extra package: Chromium's ``--remote-debugging-pipe`` speaks JSON messages ended by NUL on its
file descriptors 3 (commands in) and 4 (answers and events out); a small Python prelude puts our
pipe ends there and then becomes chromium. Every wait polls with a deadline; a browser that does
not answer fails the test.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

ANSWER_TIMEOUT_S = 20
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


_WIRE = """
import os, sys
commands, answers = int(sys.argv[1]), int(sys.argv[2])
os.dup2(commands, 3)
os.dup2(answers, 4)
os.close(commands)
os.close(answers)
os.execv(sys.argv[3], sys.argv[3:])
"""
"""Puts the pipe ends on descriptors 3 and 4, then becomes chromium."""


def _high(pipe: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to descriptors 10 and above, clear of the 3 and 4 they go to."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in pipe)
    for fd in pipe:
        os.close(fd)
    return moved[0], moved[1]


class Chromium:
    """One headless Chromium with one page, attached over a pipe."""

    def __init__(self, executable: str, flags: tuple[str, ...], profile: Path) -> None:
        commands_read, self._commands = _high(os.pipe())
        self._answers, answers_write = _high(os.pipe())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WIRE,
                str(commands_read),
                str(answers_write),
                executable,
                *flags,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(commands_read, answers_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a hung browser goes down with its children
        )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        self.session = self.send("Target.attachToTarget", targetId=page, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def __enter__(self) -> Chromium:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the browser and its process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=ANSWER_TIMEOUT_S)
        for fd in (self._commands, self._answers):
            os.close(fd)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one DevTools command on the page (the browser before attaching); its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while True:
            answer = self._receive(deadline, f"{method} to answer")
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    pytest.fail(f"DevTools {method} failed: {answer['error']}")
                return dict(answer["result"])
            self.events.append(answer)

    def _receive(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._answers], [], [], max(left, 0))
            if not ready:
                pytest.fail(f"chromium did not answer within {ANSWER_TIMEOUT_S} s ({what})")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                pytest.fail(f"chromium closed the DevTools pipe while waiting for {what}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(message))

    def open(self, page: Path, width: int = 1400, height: int = 1000) -> None:
        """Load ``page`` in a ``width`` x ``height`` window and wait for its load event."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.events.clear()
        self.send("Page.navigate", url=page.as_uri())
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._receive(deadline, f"{page.name} to load"))

    def complaints(self) -> list[str]:
        """What the page logged as an error or threw since it was opened (CSP refusals
        included)."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
            elif event.get("method") == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
        return found

    def js(self, expression: str) -> Any:
        """The value of ``expression`` evaluated in the page (DevTools, not the page's CSP)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            pytest.fail(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def type_into(self, element_id: str, text: str) -> None:
        """Focus the input ``element_id`` and type ``text`` as a keyboard would."""
        self.js(f"document.getElementById({json.dumps(element_id)}).focus()")
        self.send("Input.insertText", text=text)

    def choose(self, element_id: str, value: str) -> None:
        """Pick ``value`` in the select (or tick the checkbox for ``"on"``/``"off"``)
        ``element_id``, firing the events a person's choice fires."""
        self.js(
            f"(() => {{ const e = document.getElementById({json.dumps(element_id)});"
            f" const v = {json.dumps(value)};"
            " if (e.type === 'checkbox') e.checked = v === 'on'; else e.value = v;"
            " e.dispatchEvent(new Event('input', {bubbles: true}));"
            " e.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )

    def screenshot(self, path: Path, down_to: str = "body") -> None:
        """Save the page from its top down to the bottom of the element ``down_to`` (beyond the
        window too) as a PNG at ``path``."""
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(down_to)})"
            ".getBoundingClientRect(); return {x: 0, y: 0,"
            " width: document.documentElement.scrollWidth, height: r.bottom + scrollY + 16}; })()"
        )
        data = self.send(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={**box, "scale": 1},
        )
        path.write_bytes(base64.b64decode(data["data"]))
