"""The circuit breaker: a remote that answers nothing but failures for a while is an outage.

Every attempt a :class:`~pipeline.runtime.dispatch.Dispatcher` makes tells the breaker how it
ended: *answered* (a success, a 4xx, a 429: the remote is there) or *unanswered* (no answer at all
— connection refused or reset, DNS, TLS, a timeout — or a 5xx; the errors marked ``in_doubt``).

* **Suspected:** no answer since at least two different calls failed unanswered (one call that
  keeps failing while the others are answered is that call's problem, not an outage). While an
  outage is suspected, a failed attempt does not use up its call's retries: the call waits and
  tries again, so invoices are not written off as failed during an outage.
* **Tripped:** suspected for ``window`` seconds (measured from the start of the first attempt
  that went unanswered), or at least two calls waiting ``window`` seconds for an answer that
  never comes (a server that accepts connections and never answers). The dispatcher then stops
  every call at once (:class:`~pipeline.errors.RemoteUnreachable`, one line naming the host and
  the last error); what was not answered stays pending.
* Any answer clears the suspicion; the calls go on with the retries they had left.

Failed attempts and waits are measured on the injected :class:`~pipeline.runtime.clock.Clock`
(virtual in tests); requests left hanging are measured in real time (they wait on the network).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pipeline.errors import RemoteError, RemoteUnreachable
from pipeline.runtime.clock import Clock

WITNESSES = 2
"""Different calls that must fail unanswered (or hang) before an outage is suspected."""

PENDING_NOTE = "nothing lost: the invoices stay pending; rerun when AppZen answers"


@dataclass(eq=False, slots=True)
class Attempt:
    """One request of one call (``caller``) in flight: when it started, on both clocks."""

    caller: object
    started: float
    started_wall: float


@dataclass(slots=True)
class CircuitBreaker:
    """Watches every attempt of a dispatcher's calls to one remote; see the module docstring.

    ``remote`` names it in the message (``AppZen``), ``host`` is where it was asked
    (``api.appzen.com``), ``window`` the seconds of failures before it trips."""

    remote: str
    host: str
    window: float
    clock: Clock
    note: str = PENDING_NOTE
    wall: Callable[[], float] = time.monotonic
    tripped: RemoteUnreachable | None = None
    _last_answer: float = -math.inf
    _last_answer_wall: float = -math.inf
    _quiet_since: float | None = None
    _failed: set[object] = field(default_factory=set)
    _last_error: RemoteError | None = None
    _open: dict[int, Attempt] = field(default_factory=dict)
    _hung: int = 0

    @classmethod
    def for_url(cls, remote: str, url: str, window: float, clock: Clock) -> CircuitBreaker:
        """A breaker for the remote at ``url`` (the message names its host and port)."""
        parts = urlsplit(url)
        host = parts.hostname or url
        return cls(remote, f"{host}:{parts.port}" if parts.port else host, window, clock)

    # --- what the attempts tell it -----------------------------------------------------------
    def started(self, caller: object) -> Attempt:
        """A request of ``caller`` goes out."""
        attempt = Attempt(caller, self.clock.monotonic(), self.wall())
        self._open[id(attempt)] = attempt
        return attempt

    def ended(self, attempt: Attempt, error: BaseException | None) -> None:
        """``attempt`` ended: a success (``error`` None), an error, or cancelled."""
        self._open.pop(id(attempt), None)
        if isinstance(error, RemoteError) and error.in_doubt:
            self._unanswered(attempt, error)
        elif error is None or isinstance(error, RemoteError):
            self._answered()

    def _answered(self) -> None:
        self._last_answer = self.clock.monotonic()
        self._last_answer_wall = self.wall()
        self._quiet_since = None
        self._failed.clear()
        self._last_error = None

    def _unanswered(self, attempt: Attempt, error: RemoteError) -> None:
        self._last_error = error
        self._failed.add(attempt.caller)
        if self._quiet_since is None:
            self._quiet_since = max(attempt.started, self._last_answer)

    # --- what the calls ask it ---------------------------------------------------------------
    @property
    def suspected(self) -> bool:
        """No answer since at least :data:`WITNESSES` different calls failed unanswered."""
        return self._quiet_since is not None and len(self._failed) >= WITNESSES

    def wait_before_retry(self, delay: float) -> float:
        """``delay``, shortened so a retry during a suspected outage comes back by the time
        the breaker is due to trip (it then trips instead of retrying)."""
        if not self.suspected or self._quiet_since is None:
            return delay
        return max(0.0, min(delay, self._quiet_since + self.window - self.clock.monotonic()))

    def check(self) -> None:
        """Raise the outage when tripped, or trip now when a suspected outage lasted
        ``window`` seconds or at least two calls have waited that long for an answer."""
        if self.tripped is None and (self._failed_for_window() or self._hung_for_window()):
            self.tripped = RemoteUnreachable(self._message())
        if self.tripped is not None:
            raise self.tripped

    def _failed_for_window(self) -> bool:
        quiet = self._quiet_since
        if not self.suspected or quiet is None:
            return False
        return self.clock.monotonic() - quiet >= self.window

    def _hung_for_window(self) -> bool:
        """At least two calls have had a request out, unanswered, for ``window`` real seconds."""
        since = self.wall() - self.window
        hung = {
            id(a.caller)
            for a in self._open.values()
            if max(a.started_wall, self._last_answer_wall) <= since
        }
        self._hung = len(hung)
        return self._hung >= WITNESSES

    def _message(self) -> str:
        last = self._last_error
        if self._hung >= WITNESSES or last is None:
            why = f"{self._hung} requests waited that long and are still waiting"
        else:
            why = f"last error: {last}"
        return (
            f"{self.remote} unreachable: no answer from {self.host} for {self.window:g} s "
            f"({why}); {self.note}"
        )
