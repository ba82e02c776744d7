"""Helpers shared by the staging tests: a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """An injectable ``now``: starts at a fixed UTC instant and moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
