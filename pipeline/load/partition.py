"""Backfill partitions: a range of days cut into contiguous (since, until) bounds for the query."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta

_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_TICK = timedelta(microseconds=1)


def partition_range(
    start: date | None, end: date | None, partitions: int
) -> list[tuple[str | None, str | None]]:
    """``[start, end]`` (whole days, inclusive) as ``partitions`` contiguous ``(since, until)``
    bounds, for a query filtering ``since < updated_at <= until``. An open end stays ``None``
    (one partition: everything before, after, or all)."""
    if partitions < 1:
        raise ValueError(f"partitions must be ≥ 1, not {partitions}")
    if start is not None and end is not None and end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    if start is None or end is None:
        since = _edge(start) if start else None
        until = _edge(end + timedelta(days=1)) if end else None
        return [(since, until)]
    days = (end - start).days + 1
    count = min(partitions, days)
    cuts = [start + timedelta(days=days * i // count) for i in range(count + 1)]
    return [(_edge(a), _edge(b)) for a, b in itertools.pairwise(cuts)]


def _edge(day: date) -> str:
    """The instant just before ``day`` starts, so ``> edge`` includes the whole day."""
    return (datetime.combine(day, time()) - _TICK).strftime(_FORMAT)
