"""RowFailure: a bad row is data, not an exception; every stage reports what it could not take."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Stage = Literal[
    "extract",
    "mapping",
    "validation",
    "check",
    "warning",
    "appzen",
    "retries_exhausted",
    "status_sync",
    "audit",
    "merchant",
    "crm",
]
"""Where a row failed: reading the source, applying the mapping, validating the AppZen schema,
an AP pre-flight check (``check``: not sent; ``warning``: sent, noted in the report),
rejected by AppZen (4xx), given up after the retry budget, refused by status-sync; or, writing
AppZen's outcomes back (pipeline.connectors): reading the outcome, the merchant note, CRM.COM."""

MAX_VALUE_CHARS = 200


def shorten(value: object, limit: int = MAX_VALUE_CHARS) -> str | None:
    """The offending value as text for a report: ``None`` stays ``None``, long text is cut."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


@dataclass(frozen=True, slots=True)
class RowFailure:
    """Why one source invoice (or one of its rows) did not reach AppZen, and where it came from."""

    source_key: str | None
    source_location: str | None
    stage: Stage
    rule: str
    message: str
    field_path: str | None = None
    source_column: str | None = None
    value: str | None = None
    hint: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    correlation_id: str | None = None
    attempts: int = 0

    def with_key(self, source_key: str) -> RowFailure:
        """The same failure attributed to an invoice key."""
        return replace(self, source_key=source_key)
