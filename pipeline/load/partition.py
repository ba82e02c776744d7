"""Backfill partitions: a range of days cut into contiguous (since, until) bounds for the query."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

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


def since_bound(text: str) -> str:
    """``--since``'s value as the bound a run binds: changes **at or after** it are read.

    ``2024-12-01`` is that whole day on (from 00:00 UTC); ``2024-12-01T08:00`` (or with a space)
    that moment in UTC; ``2024-12-01T08:00+01:00`` that moment in its own zone. Anything else is
    refused (ValueError naming the forms), never read as "everything" or "nothing".
    """
    value = text.strip()
    try:
        if len(value) == 10:
            return _edge(date.fromisoformat(value))
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: give an ISO date (2024-12-01: that day on, UTC) or date "
            "and time (2024-12-01T08:00, UTC unless it names its zone: 2024-12-01T08:00+01:00)"
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _TICK).strftime(_FORMAT)
