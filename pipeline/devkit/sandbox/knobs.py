"""The sandbox's fault-injection knobs, its credentials, and the token bucket behind its quota."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.devkit.sandbox.wire import describe_validation
from pipeline.errors import ConfigurationError
from pipeline.settings import SANDBOX_CREDENTIALS

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Milliseconds = Annotated[float, Field(ge=0.0, le=600_000.0)]


class Knobs(BaseModel):
    """How the sandbox misbehaves. Every probability is rolled per request on a seeded RNG."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: Annotated[float, Field(gt=0.0, le=1_000_000.0)] | None = Field(
        default=None,
        description="Quota in requests/s (token bucket, capacity max(1, rate)); None = unlimited.",
    )
    latency_ms: Milliseconds = Field(default=0.0, description="Delay before every answer.")
    latency_spike_rate: Probability = Field(
        default=0.0, description="Probability that a request waits latency_spike_ms more."
    )
    latency_spike_ms: Milliseconds = Field(default=0.0, description="Length of a latency spike.")
    fail_rate: Probability = Field(
        default=0.0, description="Probability of a 500 answered without processing the request."
    )
    commit_then_fail_rate: Probability = Field(
        default=0.0, description="Probability that a create or status-sync is stored, then 500."
    )
    drop_rate: Probability = Field(
        default=0.0, description="Probability of closing the connection without any answer."
    )
    commit_then_drop_rate: Probability = Field(
        default=0.0,
        description="Probability that a create or status-sync is stored, then the connection "
        "is closed without an answer (the client cannot know it went through).",
    )
    seed: int | None = Field(default=None, description="Seed of the fault RNG; None = random.")
    unknown_suppliers: frozenset[str] = Field(
        default=frozenset(),
        description="supplier_id values AppZen does not know: a create naming one is answered "
        "400 (a business rejection the schema cannot catch).",
    )
    failing_invoices: frozenset[str] = Field(
        default=frozenset(),
        description="invoice_id values whose create or status-sync is answered 500 every time, "
        "without storing anything (a server failure of some invoices while the others go "
        "through).",
    )
    echo_credentials: bool = Field(
        default=False,
        description="Every refusal of an AppZen route (400, 401, 403, 404, 413) quotes the "
        "request's credentials, "
        "as header echoes and bare, as a gateway that logs its request into the error does.",
    )
    refused_statuses: frozenset[str] = Field(
        default=frozenset(),
        description="invoice_status values a status-sync is refused for with 400 (a business "
        "rejection the schema cannot catch).",
    )


class SandboxConfigError(ConfigurationError, ValueError):
    """A knob is unknown or out of range; the message names each one and its bounds."""


def parse_knobs(values: Mapping[str, Any]) -> Knobs:
    """Validate knob values; raise :class:`SandboxConfigError` listing every bad one."""
    try:
        return Knobs.model_validate(dict(values))
    except ValidationError as error:
        raise SandboxConfigError(f"invalid sandbox knobs: {describe_validation(error)}") from None


@dataclass(frozen=True, slots=True)
class Credentials:
    """The headers the sandbox accepts: ``x-api-key``, ``customer-id``, ``customer-key``."""

    api_key: str = SANDBOX_CREDENTIALS[0]
    customer_id: str = SANDBOX_CREDENTIALS[1]
    customer_key: str = SANDBOX_CREDENTIALS[2]

    def __repr__(self) -> str:
        return f"Credentials(api_key='***', customer_id={self.customer_id!r}, customer_key='***')"


class TokenBucket:
    """``rate`` tokens per second, at most ``max(1, rate)`` banked; starts full. Not thread-safe."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()

    def take(self) -> float | None:
        """Spend one token: ``None`` when granted, else the seconds until one is available."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / self.rate


def retry_after_header(wait_seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(wait_seconds)))
