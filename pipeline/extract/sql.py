"""SQL sources: a query file run on any SQLAlchemy database, streamed in chunks (server cursor).

The query binds parameters by name (``:since``, ``:until``); :meth:`SqlSource.chunks` binds only
those the query's code uses (not a ``:name`` in a comment or quoted text:
:mod:`pipeline.extract.sqltext`), missing ones as NULL, so a query can say
``(:since IS NULL OR updated_at > :since)``. A bound value's SQL type follows its Python type
(a ``datetime`` binds as a timestamp), so comparisons are right on every dialect.

Values stay what the driver returns (``Decimal``, ``date``, ``datetime``: exact, never floats).
SQLite has no decimal or date types: there they come back as the text (or number) SQLite stored.
Every error names the query file and the database with its password masked; the driver's error
code (never its text) makes it transient (:class:`SourceUnavailable`: a later run may succeed) or
terminal (:class:`ExtractError`).

**Why no pandas here:** the driver already returns Python objects, row by row; each fetch is
transposed once into column lists (``zip(*rows)``), which is what the mapping engine reads. A
data frame would box those objects into object columns only for the engine to unbox them again,
and pandas' own SQL reader would turn decimals into floats.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, make_url
from sqlalchemy.pool import NullPool

from pipeline.extract.base import Chunk, ExtractError, Rows, SourceError, SourceUnavailable
from pipeline.extract.sqltext import bindable_text, query_parameters
from pipeline.runtime.dbcodes import db_failure
from pipeline.runtime.prefetch import read_ahead
from pipeline.settings import mask_url

READ_AHEAD: Final = 0
"""Chunks a SQL source reads ahead of its reader by default: none (read in the caller's thread).
One chunk ahead (:func:`pipeline.runtime.prefetch.read_ahead`) measured ~9 % faster on a loaded
machine but made a PostgreSQL dry-run's peak RSS grow with the run (10,000 -> 100,000 invoices:
313 -> 440 MiB, 1.41, against 300 -> 344 MiB, 1.15, without; the reader thread's own malloc arena
suspected), which breaks row 4's <= 1.5; ``SqlSource(read_ahead=1)`` still reads ahead."""

CONNECT_TIMEOUT_SECONDS = 15
CHUNK_ROWS = 5_000
"""Rows per fetch and per chunk. Larger fetches save little time (a round trip per 5,000 rows)
but cost memory twice: the driver's buffer of the fetch (libpq keeps it in C memory) and the
chunk's Python objects; 20,000 rows of a 43-column query held ~170 MB in flight."""
_MAX_DETAIL_CHARS = 600
_SECRET_KEY = re.compile(r"pass|secret|token|key", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class QueryChunk(Chunk):
    """A chunk of query rows: row ``i`` is at ``<query file> row <first_row + i>``."""

    def location(self, index: int) -> str:
        """``sql/sample_erp/extract.sql row 17``."""
        return f"{self.origin} row {self.first_row + index}"


def _driver_error(connection: Connection) -> tuple[type[Exception], ...]:
    """The driver's base error class (``psycopg.Error``, ``pymysql.MySQLError`` …): what a
    fetch straight from its cursor raises, where SQLAlchemy would have wrapped it."""
    error = getattr(connection.dialect.loaded_dbapi, "Error", None)
    return (error,) if isinstance(error, type) and issubclass(error, Exception) else ()


def _fetches(result: CursorResult[object], size: int) -> Iterator[Rows]:
    """The result's rows, ``size`` at a time, as the driver's own row tuples.

    After SQLAlchemy's first row (a streamed result fetches one when it runs), every fetch goes
    straight to the DBAPI cursor (psycopg's named cursor, PyMySQL's ``SSCursor``, sqlite3's
    cursor): no ``Row`` object per row, values exactly as the driver made them. When SQLAlchemy
    would change a value (a dialect's result processor) or buffered more than that one row,
    every row goes through SQLAlchemy instead, as ``tuple(row)``.
    """
    head: list[Sequence[object]] = [tuple(row) for row in result.fetchmany(1)]
    cursor = result.cursor
    processors = getattr(result._metadata, "_processors", None)
    buffered = getattr(result.cursor_strategy, "_rowbuffer", None)
    fetch: Callable[[int], Rows]
    if cursor is None or processors is None or any(processors) or buffered:

        def fetch(count: int) -> Rows:
            return [tuple(row) for row in result.fetchmany(count)]
    else:
        fetch = cursor.fetchmany
    while True:
        want = size - len(head)
        part = head + list(fetch(want)) if want else head
        if not part:
            return
        head = []
        yield part


class SqlSource:
    """The rows of the query in ``query_file`` (relative to ``base_dir``) on the database ``url``.

    Nothing is read or connected until a method is called.
    """

    def __init__(
        self,
        url: str,
        query_file: Path,
        *,
        base_dir: Path,
        chunk_rows: int = CHUNK_ROWS,
        read_ahead: int = READ_AHEAD,
    ) -> None:
        if chunk_rows < 1:
            raise ExtractError(f"SQL source {query_file}: chunk_rows must be at least 1")
        if read_ahead < 0:
            raise ExtractError(f"SQL source {query_file}: read_ahead must be 0 or more")
        self._read_ahead = read_ahead
        self._url = url
        self._origin = Path(query_file).as_posix()
        self._query_path = Path(base_dir) / query_file
        self._chunk_rows = chunk_rows

    def describe(self) -> str:
        """``sql/sample_erp/extract.sql on postgresql+psycopg://app:***@db/erp``."""
        return f"{self._origin} on {self._database()}"

    def columns(self) -> list[str]:
        """The query's column names, from its result description (no row is fetched)."""
        query = self._query()
        # The query file is trusted configuration, not user input.
        probe = f"SELECT * FROM (\n{query}\n) appzen_columns WHERE 1 = 0"  # noqa: S608
        engine = self._engine()
        try:
            with self._connect(engine) as connection:
                try:
                    return self._keys_of(connection, probe)
                except sa.exc.SQLAlchemyError:
                    # Not every query can be a derived table: describe a streamed run instead.
                    connection.rollback()
                try:
                    return self._keys_of(connection, query, stream=True)
                except sa.exc.SQLAlchemyError as error:
                    raise self._error("the query failed", error) from None
        finally:
            engine.dispose()

    def chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        """Stream the rows ``chunk_rows`` at a time through a server-side cursor; with
        ``read_ahead`` > 0, read on a thread of their own that many chunks ahead of the caller
        (:mod:`pipeline.runtime.prefetch`: the database read overlaps the mapping before)."""
        return read_ahead(self._chunks(params), self._read_ahead, name="appzen-sql-read")

    def _chunks(self, params: Mapping[str, object]) -> Iterator[Chunk]:
        statement = self._statement(self._query(), params)
        engine = self._engine()
        try:
            with self._connect(engine) as connection:
                yield from self._stream(connection, statement)
        finally:
            engine.dispose()

    @property
    def backend(self) -> str:
        """The database's dialect name (``sqlite``, ``postgresql``, ``mysql`` …)."""
        return self._dialect()

    def parameters(self) -> list[str]:
        """The bind parameters of the query's code (not those in comments or quoted text)."""
        return query_parameters(self._query(), self._dialect())

    def probe(self, params: Mapping[str, object], round_name: str) -> None:
        """Run the query once with ``params`` bound and read its first row (streamed: nothing
        more is fetched), so a query that fails only once a parameter has a value fails now;
        ``round_name`` names the round in the error (``an incremental run (:since bound)``)."""
        statement = self._statement(self._query(), params).execution_options(stream_results=True)
        engine = self._engine()
        try:
            with self._connect(engine) as connection:
                try:
                    result = connection.execute(statement)
                    result.fetchmany(1)
                    result.close()
                except sa.exc.SQLAlchemyError as error:
                    raise self._error(f"the query fails on {round_name}", error) from None
        finally:
            engine.dispose()

    # --- running ---------------------------------------------------------------------------------
    def _stream(self, connection: Connection, statement: sa.TextClause) -> Iterator[Chunk]:
        done = 0
        size = self._chunk_rows
        failed: tuple[type[Exception], ...] = (
            sa.exc.SQLAlchemyError,
            *_driver_error(connection),
        )
        try:
            streamed = statement.execution_options(stream_results=True, max_row_buffer=size)
            result = connection.execute(streamed)
            keys = self._checked_keys(result)
            for part in _fetches(result, size):
                chunk = QueryChunk.of_rows(keys, part, self._origin, done + 1)
                done += len(part)
                del part  # nothing of this chunk stays referenced here while the next is read
                yield chunk
                del chunk
        except failed as error:
            if not isinstance(error, sa.exc.SQLAlchemyError):
                # Raised by the driver's cursor itself, so SQLAlchemy did not see it: this
                # connection is not rolled back and reused (it may be lost), but dropped.
                with contextlib.suppress(Exception):
                    connection.invalidate()
            after = f" after {done} rows" if done else ""
            raise self._error(f"the query failed{after}", error) from None

    def _keys_of(self, connection: Connection, query: str, *, stream: bool = False) -> list[str]:
        statement = self._statement(query, {})
        result = connection.execute(statement.execution_options(stream_results=stream))
        try:
            return self._checked_keys(result)
        finally:
            result.close()

    def _checked_keys(self, result: CursorResult[object]) -> list[str]:
        names = result.keys()
        keys = [str(name) for name in names]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ExtractError(
                f"{self.describe()}: the query returns column(s) {twice} more than once; give "
                f"each a distinct alias (... AS name) in {self._origin}"
            )
        return keys

    def _statement(self, query: str, params: Mapping[str, object]) -> sa.TextClause:
        """The query with every parameter it uses bound, typed by its value; a missing or None
        one is written as a NULL literal (an untyped NULL parameter fails on PostgreSQL)."""
        clause = sa.text(bindable_text(query, self._dialect()))
        binds: list[sa.BindParameter[object]] = []
        for name in clause.compile().params:
            value = params.get(name)
            binds.append(sa.bindparam(name, value, literal_execute=value is None))
        return clause.bindparams(*binds)

    # --- the database ----------------------------------------------------------------------------
    def _query(self) -> str:
        try:
            text = self._query_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ExtractError(
                f"SQL source {self._origin}: cannot read the query file {self._query_path} "
                f"({error}); check the query path (relative to the project directory)"
            ) from None
        query = text.strip().rstrip(";").strip()
        if not query:
            raise ExtractError(f"{self._origin}: the query file is empty; write a SELECT in it")
        return query

    def _engine(self) -> Engine:
        url = self._parsed_url()
        self._check_sqlite_file(url)
        connect_args: dict[str, object] = {}
        networked = url.get_backend_name() in {"postgresql", "mysql", "mariadb"}
        if networked and "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
        try:
            return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
        except (sa.exc.ArgumentError, ImportError) as error:
            raise ExtractError(
                f"{self._origin}: cannot use the database {self._database()}: "
                f"{self._scrub(str(error))}; check the URL's dialect and driver "
                "(e.g. postgresql+psycopg://, mysql+pymysql://, sqlite:///)"
            ) from None

    def _check_sqlite_file(self, url: URL) -> None:
        """A SQLite ERP that is not there is refused with its path: connecting would create an
        empty file, and the query would fail on "no such table" (or read nothing)."""
        database = url.database or ""
        if url.get_backend_name() != "sqlite" or database in {"", ":memory:"}:
            return
        if database.startswith("file:"):
            return  # a URI names its own mode
        path = Path(database)
        if not path.is_file():
            where = path if path.is_absolute() else f"{path} (from {Path.cwd()})"
            missing = "no such directory" if not path.parent.is_dir() else "no such file"
            raise ExtractError(
                f"{self._origin}: the SQLite database {where} does not exist ({missing}); "
                "check the path in the database URL (sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db)"
            )

    def _connect(self, engine: Engine) -> Connection:
        try:
            return engine.connect()
        except sa.exc.SQLAlchemyError as error:
            raise self._error(
                "cannot connect",
                error,
                fix="check the URL, the credentials and that the server is running and reachable",
            ) from None

    def _dialect(self) -> str:
        """``sqlite``, ``postgresql``, ``mysql`` … (empty when the URL does not parse)."""
        try:
            return make_url(self._url).get_backend_name()
        except (sa.exc.ArgumentError, ValueError):
            return ""

    def _parsed_url(self) -> URL:
        try:
            return make_url(self._url)
        except (sa.exc.ArgumentError, ValueError):
            raise ExtractError(
                f"{self._origin}: the database URL cannot be parsed (not shown: it may hold a "
                "password); write it as dialect+driver://user:password@host:port/database"
            ) from None

    def _database(self) -> str:
        try:
            url = make_url(self._url)
        except (sa.exc.ArgumentError, ValueError):
            return "an unparsable database URL"
        secret = {key: "***" for key in url.query if _SECRET_KEY.search(key)}
        return url.update_query_dict(secret).render_as_string(hide_password=True)

    def _error(self, what: str, error: Exception, *, fix: str | None = None) -> SourceError:
        """Transient or terminal by the driver's code; the message names the query and the fix."""
        cause = getattr(error, "orig", None) or error
        detail = " ".join(self._scrub(str(cause)).split())  # one line: PostgreSQL adds LINE/HINT
        if len(detail) > _MAX_DETAIL_CHARS:
            detail = detail[:_MAX_DETAIL_CHARS] + "…"
        advice = fix or f"fix the query in {self._origin} (try it in an SQL client) or the database"
        kind = SourceUnavailable if db_failure(error).transient else ExtractError
        return kind(f"{self.describe()}: {what}: {detail}; {advice}")

    def _scrub(self, text: str) -> str:
        """``text`` without the password or other secrets of the URL, in any spelling."""
        text = mask_url(text)
        for secret in self._secrets():
            for spelling in {secret, quote(secret, safe=""), quote_plus(secret)}:
                text = text.replace(spelling, "***")
        return text

    def _secrets(self) -> list[str]:
        try:
            url = make_url(self._url)
        except (sa.exc.ArgumentError, ValueError):
            return []
        found = [str(url.password)] if url.password else []
        for key, value in url.query.items():
            if _SECRET_KEY.search(key):
                found.extend([value] if isinstance(value, str) else list(value))
        return [secret for secret in found if secret]
