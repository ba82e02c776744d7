"""A local emulator of AppZen's invoice API, with quota, latency and fault knobs (see server.py)."""

from __future__ import annotations

from pipeline.sandbox.app import SandboxApp
from pipeline.sandbox.knobs import Credentials, Knobs, SandboxConfigError
from pipeline.sandbox.server import SandboxServer, serve
from pipeline.sandbox.state import SandboxState, StatusPush, StoredInvoice, UnknownInvoiceError
from pipeline.sandbox.wire import PathError

__all__ = [
    "Credentials",
    "Knobs",
    "PathError",
    "SandboxApp",
    "SandboxConfigError",
    "SandboxServer",
    "SandboxState",
    "StatusPush",
    "StoredInvoice",
    "UnknownInvoiceError",
    "serve",
]
