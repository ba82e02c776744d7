"""A status-sync run's clean stop on a stop request (SIGTERM, :mod:`pipeline.runtime.stop`): no
push starts after it, the pushes already out finish (abandoned after
:data:`~pipeline.runtime.stop.GRACE_S`) and are recorded, the statuses not pushed stay pending,
and the run is recorded ``cancelled``."""

from __future__ import annotations

from pipeline.errors import RunCancelled
from pipeline.runtime import stop
from pipeline.runtime.dispatch import Dispatcher


class StopOnRequest:
    """The stop listener of one status-sync run: call it with the reason (as
    :func:`~pipeline.runtime.stop.listening` does); it stops the dispatcher the run pushes
    through (:meth:`watch`), at once if the request came before."""

    def __init__(self) -> None:
        self.error: RunCancelled | None = None
        self._dispatchers: list[Dispatcher] = []

    def __call__(self, reason: str) -> None:
        if self.error is not None:
            return
        self.error = RunCancelled(
            f"cancelled: {reason}; the pushes already out were finished and recorded; "
            "nothing lost: the statuses not pushed stay pending; rerun to push them"
        )
        for dispatcher in self._dispatchers:
            dispatcher.cancel(self.error, stop.GRACE_S)

    def watch(self, dispatcher: Dispatcher) -> None:
        """Stop ``dispatcher`` on the request (now, if it came already)."""
        self._dispatchers.append(dispatcher)
        if self.error is not None:
            dispatcher.cancel(self.error, stop.GRACE_S)
