"""Watermarks of incremental runs (the newest change finished, never past one still open) and
the text form in which watermarks and bounds are bound into the extraction query."""

from __future__ import annotations

import re
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


def bound_params(since: object, until: object, text_format: str | None = None) -> dict[str, object]:
    """``:since`` and ``:until`` as a run binds them into the source's query: as timestamps, or
    as text of the watermark column's own shape when the mapping declares ``watermark_format``."""
    return {"since": bindable(since, text_format), "until": bindable(until, text_format)}


def bindable(value: object, text_format: str | None = None) -> object:
    """A watermark or bound as the databases compare it with the watermark column.

    Without ``text_format``: a naive UTC ``datetime``. Bound as a timestamp, it compares with
    timestamp columns on PostgreSQL (which refuses ``timestamp > varchar``) and MariaDB, and
    SQLAlchemy writes it on SQLite as the same ``YYYY-MM-DD HH:MM:SS.ffffff`` text it stores
    timestamps as; anything that is not a date stays as it is.

    With ``text_format`` (a ``strftime`` pattern, the mapping's ``watermark_format``): text of
    that shape (``20240315093000``, ``2024-03-15T09:30:00``), so a text column compares in its
    own terms; a value already of that shape (a stored watermark) is bound unchanged.
    """
    if text_format is not None and isinstance(value, str):
        try:
            datetime.strptime(value, text_format)
        except ValueError:
            pass
        else:
            return value
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
    return moment if text_format is None else moment.strftime(text_format)


#: Text timestamp shapes recognised in a watermark column, with their ``strftime`` pattern and
#: whether a bound timestamp (written ``YYYY-MM-DD HH:MM:SS.ffffff`` on SQLite and MariaDB)
#: compares with them correctly as text.
_TEXT_SHAPES: list[tuple[re.Pattern[str], str, bool]] = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?"), "%Y-%m-%d %H:%M:%S", True),
    (re.compile(r"\d{4}-\d\d-\d\d"), "%Y-%m-%d", True),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+"), "%Y-%m-%dT%H:%M:%S.%f", False),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"), "%Y-%m-%dT%H:%M:%S", False),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d"), "%Y-%m-%dT%H:%M", False),
    (re.compile(r"\d{14}"), "%Y%m%d%H%M%S", False),
    (re.compile(r"\d{12}"), "%Y%m%d%H%M", False),
    (re.compile(r"\d{8}"), "%Y%m%d", False),
]


def text_watermark_problem(sample: object, dialect: str, column: str) -> str | None:
    """Why ``:since``/``:until`` bound as timestamps would not compare with a watermark column
    holding ``sample`` (None when they would), with the ``watermark_format`` that fixes it.

    PostgreSQL refuses ``text > timestamp``; SQLite and MariaDB compare the two as text, which is
    right only for ``YYYY-MM-DD HH:MM:SS`` and ``YYYY-MM-DD`` (with a ``T`` a whole day is lost).
    """
    if not isinstance(sample, str):
        return None
    shape = next((s for s in _TEXT_SHAPES if s[0].fullmatch(sample.strip())), None)
    if shape is not None and shape[2] and dialect != "postgresql":
        return None
    fix = (
        f'declare  watermark_format: "{shape[1]}"  in the mapping'
        if shape is not None
        else "declare its strftime pattern as  watermark_format:  in the mapping"
    )
    return (
        f"the watermark column {column} holds text ({sample!r}), which a bound timestamp does "
        f"not compare with correctly on {dialect or 'this database'}; {fix}, so :since and "
        ":until are bound as text of the same shape"
    )
