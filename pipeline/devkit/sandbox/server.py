"""Serving the sandbox with uvicorn: in a background thread (tests), in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.devkit.sandbox.app import ABORT_KEY, ADMIN_PREFIX, PREFIX, SandboxApp
from pipeline.devkit.sandbox.crm import CRM_PREFIX
from pipeline.devkit.sandbox.knobs import Credentials, parse_knobs
from pipeline.devkit.sandbox.merchant import MERCHANT_PREFIX
from pipeline.devkit.sandbox.state import SandboxState

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
STOP_GRACE = 0.5
"""Seconds requests still in flight get to finish when a SandboxServer stops."""
_POLL_INTERVAL = 0.005
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class AbortableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a per-connection ``abort`` the app can call to drop it.

    uvicorn answers 500 itself when an app fails before responding, so a dropped connection
    needs the transport: each connection gets its own copy of the state dict that uvicorn copies
    into ``scope["state"]``, holding ``transport.abort`` under :data:`ABORT_KEY`.
    """

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        self.app_state = {**self.app_state, ABORT_KEY: transport.abort}


def _config(app: SandboxApp, host: str, port: int, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=AbortableH11Protocol,
        loop="asyncio",
        lifespan="off",
        access_log=False,
        **extra,
    )


def _build_state(
    state: SandboxState | None, credentials: Credentials | None, knobs: dict[str, Any]
) -> SandboxState:
    if state is not None:
        if knobs or credentials is not None:
            raise TypeError("pass either state= or knobs/credentials, not both")
        return state
    return SandboxState(parse_knobs(knobs), credentials)


class SandboxServer:
    """The sandbox on a free loopback port in a background thread; a context manager.

    ``with SandboxServer(rate=5) as sandbox: httpx.post(sandbox.base_url + "/invoice", ...)``;
    ``sandbox.state`` is the live :class:`SandboxState` (configure, reset, inspect).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        state: SandboxState | None = None,
        credentials: Credentials | None = None,
        **knobs: Any,
    ) -> None:
        self.host = host
        self.state = _build_state(state, credentials, knobs)
        self._requested_port = port
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._port is None:
            raise RuntimeError("the sandbox is not running: use it as a context manager")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The AppZen API root: ``http://127.0.0.1:PORT/dictionary-data-services``."""
        return self.root_url + PREFIX

    @property
    def merchant_url(self) -> str:
        """The sandbox merchant platform's API root: ``http://127.0.0.1:PORT/merchant``."""
        return self.root_url + MERCHANT_PREFIX

    @property
    def crm_url(self) -> str:
        """The sandbox CRM.COM Web API root: ``http://127.0.0.1:PORT/crm``."""
        return self.root_url + CRM_PREFIX

    @property
    def admin_url(self) -> str:
        """The admin root: ``http://127.0.0.1:PORT/_sandbox``."""
        return self.root_url + ADMIN_PREFIX

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bind, start uvicorn in a thread, and return once it accepts requests."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        sock = _listening_socket(self.host, self._requested_port)
        self._port = sock.getsockname()[1]
        server = uvicorn.Server(
            _config(
                SandboxApp(self.state),
                self.host,
                self._port,
                log_config=None,
                timeout_graceful_shutdown=STOP_GRACE,
            )
        )
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"appzen-sandbox-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        try:
            self._wait_until_started(server, thread, sock)
        except BaseException:
            self.stop()
            raise

    def _wait_until_started(
        self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive():
                sock.close()
                raise RuntimeError(f"the sandbox failed to start on {self.root_url}: see the log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start within {START_TIMEOUT} s")
            time.sleep(_POLL_INTERVAL)

    def stop(self) -> None:
        """Stop uvicorn and wait for its thread; idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            raise RuntimeError(f"the sandbox thread on port {self._port} did not stop")


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so, and without it
    # every answer waits ~40 ms for a delayed ACK (uvicorn writes headers and body separately).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise OSError(
            error.errno,
            f"the sandbox cannot listen on {host}:{port} ({error.strerror}): "
            "pick another port, or port=0 for a free one",
        ) from None
    sock.setblocking(False)
    return sock


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    credentials: Credentials | None = None,
    **knobs: Any,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C (``appzen-etl sandbox``).

    Raises :class:`SandboxConfigError` for a bad knob and :class:`OSError` naming the port when
    it cannot listen.
    """
    state = _build_state(None, credentials, knobs)
    if host not in LOOPBACK_HOSTS:
        log.warning(
            "the sandbox's /_sandbox admin routes have no auth and it now listens on %s: "
            "anyone who can reach it can reconfigure it",
            host,
        )
    sock = _listening_socket(host, port)
    server = uvicorn.Server(_config(SandboxApp(state), host, port, timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown
        log.info("sandbox on %s:%d stopped", host, port)
