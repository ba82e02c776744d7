"""Watermarks of incremental runs (the newest change finished, never past one still open) and
the text form in which watermarks and bounds are bound into the extraction query."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime


class Watermarks:
    """Watermark values of finished and open invoices, in constant memory.

    Only the smallest open mark and the largest finished mark below it matter. Values compare as
    they come from the source (numbers as numbers, timestamps as timestamps; text as text), and as
    text when two values cannot be compared. A finished mark dropped because a smaller open one
    came later only makes the next run read more again, never less.
    """

    def __init__(self) -> None:
        self._open: object | None = None
        self._done: object | None = None

    def add(self, done: Iterable[object], still_open: Iterable[object]) -> None:
        """Count one batch's watermark values: of invoices finished, and of those still open
        (the open ones first, so a finished mark of the same batch below them is kept)."""
        for value in still_open:
            if self._open is None or _before(value, self._open):
                self._open = value
        stale = self._done is not None and self._open is not None
        if stale and not _before(self._done, self._open):
            self._done = None
        for value in done:
            below = self._open is None or _before(value, self._open)
            if below and (self._done is None or _before(self._done, value)):
                self._done = value

    @property
    def value(self) -> str | None:
        """The watermark to store: the largest finished mark below every open one, as text."""
        return None if self._done is None else as_text(self._done)


def as_text(value: object) -> str:
    """A watermark value as stored in the runs table (ISO text for timestamps)."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _before(a: object, b: object) -> bool:
    try:
        return bool(a < b)  # type: ignore[operator]
    except TypeError:
        return as_text(a) < as_text(b)


def bound_params(since: object, until: object) -> dict[str, object]:
    """``:since`` and ``:until`` as a run binds them into the source's query."""
    return {"since": bindable(since), "until": bindable(until)}


def bindable(value: object) -> object:
    """A watermark or bound as the databases compare it: a naive UTC ``datetime``.

    Bound as a timestamp, it compares with timestamp columns on PostgreSQL (which refuses
    ``timestamp > varchar``) and MariaDB, and SQLAlchemy writes it on SQLite as the same
    ``YYYY-MM-DD HH:MM:SS.ffffff`` text it stores timestamps as; anything that is not a date
    stays as it is.
    """
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(moment, datetime):
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
