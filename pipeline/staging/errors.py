"""The staging store's errors and the one place that turns a database failure into one of them:
transient or terminal by the driver's error code, its text without secrets.

The family (in the one error tree of :mod:`pipeline.errors`)::

    StagingError                    catch this: anything the staging database could not do
    ├── StagingTerminalError        [terminal] bad URL, rights, full disk, missing database …
    └── StagingTransientError       [transient] locked/busy, connection refused or lost,
                                    deadlock, serialization failure, too many connections, shutdown

Which of the two a driver failure becomes is decided by its code
(:func:`pipeline.runtime.dbcodes.db_failure`); the driver's message only picks the hint shown to
a person (:func:`hint_for`).
"""

from __future__ import annotations

import re

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from pipeline.errors import EtlError, TerminalError, TransientError
from pipeline.runtime.dbcodes import DbFailure, db_failure
from pipeline.settings import mask_url

# (pattern in the driver's message, what the operator should do), first match wins. Hints only:
# whether a failure is worth retrying is read from the driver's code, never from this text.
_HINTS: tuple[tuple[str, str], ...] = (
    (
        r"database is locked|database table is locked",
        "another process held the write lock longer than the busy timeout; let it finish, "
        "or raise the busy timeout (SQLite: add ?timeout=SECONDS to STAGING_DATABASE_URL)",
    ),
    (
        r"disk is full|disk full|no space left|quota exceeded",
        "the disk holding the staging database is full; free space and rerun "
        "(nothing was committed by the failed transaction)",
    ),
    (
        r"disk I/O error|file too large",
        "the staging database file could not be written (disk full, a file-size limit or a "
        "failing disk); fix that and rerun (nothing was committed by the failed transaction)",
    ),
    (
        r"unable to open database file|readonly database|read-only",
        "check that the directory exists and the database file is writable by this user",
    ),
    (
        r"password authentication failed|access denied",
        "check the user and password in STAGING_DATABASE_URL",
    ),
    (
        r"does not exist|unknown database",
        "create the database (or schema) first, or fix its name in STAGING_DATABASE_URL",
    ),
    (
        r"connection refused|could not connect|can't connect|connection failed|timeout expired"
        r"|name or service not known|could not translate host name|unknown mysql server host",
        "is the database server running and reachable? check host and port in STAGING_DATABASE_URL",
    ),
)


class StagingError(EtlError):
    """The staging database cannot do what was asked (unreachable, locked, full, bad URL, a
    migration or a record that does not fit). The message names the database, never its
    password, and the fix. A family: raise one of the two classes below."""


class StagingTerminalError(StagingError, TerminalError):
    """Retrying cannot help: fix the URL, the rights, the disk or the database, then rerun."""


class StagingTransientError(StagingError, TransientError):
    """The database was locked, busy or unreachable, or another transaction got in the way: the
    same work may succeed later."""


def describe_url(url: str) -> str:
    """The database URL for messages: password masked, whatever shape the URL has."""
    masked = mask_url(url)
    try:
        password = make_url(url).password
    except sa_exc.ArgumentError:
        return masked
    if password:
        masked = masked.replace(str(password), "***")
    return masked


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password (if any) replaced by ``***``."""
    try:
        password = make_url(url).password
    except sa_exc.ArgumentError:
        password = None
    text = mask_url(text)
    return text.replace(str(password), "***") if password else text


def driver_message(error: BaseException) -> str:
    """The driver's own one-line message, without SQLAlchemy's statement and parameters."""
    orig = getattr(error, "orig", None)
    source = orig if isinstance(orig, BaseException) else error
    text = " ".join(str(arg) for arg in source.args) if source.args else type(source).__name__
    return text.strip().splitlines()[0] if text.strip() else type(source).__name__


def hint_for(message: str) -> str:
    """What to do about a driver message; a generic hint when nothing more specific applies."""
    for pattern, hint in _HINTS:
        if re.search(pattern, message, re.IGNORECASE):
            return hint
    return "see the database server's log for details"


def is_retryable(error: sa_exc.DBAPIError) -> bool:
    """True for a deadlock or serialization failure: the whole transaction can run again at
    once (a conflict is one kind of transient failure: see :func:`staging_error`)."""
    return db_failure(error) is DbFailure.CONFLICT


def staging_error(url: str, action: str, error: BaseException) -> StagingError:
    """The :class:`StagingError` for ``action`` on the database at ``url``: transient or
    terminal by the driver's code; the message gives the reason and the fix."""
    reason = scrub(driver_message(error), url)
    kind = StagingTransientError if db_failure(error).transient else StagingTerminalError
    return kind(
        f"staging database {describe_url(url)}: {action} failed: {reason} ({hint_for(reason)})"
    )
