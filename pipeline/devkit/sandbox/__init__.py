"""A local emulator of AppZen's invoice API, with quota, latency and fault knobs (see server.py)."""

from __future__ import annotations

from pipeline.devkit.sandbox.app import SandboxApp
from pipeline.devkit.sandbox.knobs import Credentials, Knobs, SandboxConfigError
from pipeline.devkit.sandbox.server import SandboxServer, serve
from pipeline.devkit.sandbox.state import (
    SandboxState,
    StatusPush,
    StoredInvoice,
    UnknownInvoiceError,
)
from pipeline.devkit.sandbox.wire import PathError

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
