"""The text of a query file as the database reads it: code, comments and quoted text apart.

SQLAlchemy's ``text()`` takes every ``:name`` for a bind parameter, even inside ``-- uses
:since``, ``/* … */`` or ``'…'``; the driver then holds one parameter more than the statement it
sends (``Incorrect number of bindings supplied`` on SQLite) as soon as that parameter has a value,
which is the first incremental run, not the first run. :func:`bindable_text` escapes the colons
of comments and quoted text (``\\:since``, which ``text()`` writes back as ``:since``), so the
parameters are exactly those of the code (:func:`query_parameters`), as the database sees them.

Recognised: ``--`` line comments (``#`` too on MySQL/MariaDB), ``/* … */`` block comments (nested
on PostgreSQL; MySQL's executable ``/*! … */`` is code), ``'…'`` strings with ``''`` (and
backslash escapes on MySQL/MariaDB and in PostgreSQL's ``E'…'``), ``"…"`` and `` `…` `` quoted
names, and PostgreSQL's dollar-quoted ``$tag$ … $tag$``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)")
"""A bind parameter as SQLAlchemy's ``text()`` finds it (``::type`` casts and ``\\:`` are not)."""
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_MYSQL = ("mysql", "mariadb")


def segments(sql: str, dialect: str = "") -> Iterator[tuple[bool, str]]:
    """``(is_code, text)`` pieces of ``sql`` in order; comments and quoted text are not code."""
    start = index = 0
    while index < len(sql):
        end = _quoted_end(sql, index, dialect)
        if end is None:
            index += 1
            continue
        if start < index:
            yield True, sql[start:index]
        yield False, sql[index:end]
        start = index = end
    if start < len(sql):
        yield True, sql[start:]


def bindable_text(sql: str, dialect: str = "") -> str:
    """``sql`` for ``sqlalchemy.text()``: a ``:name`` in a comment or quoted text is escaped,
    so it is neither a parameter nor changed in what the database receives."""
    return "".join(
        text if code else BIND.sub(lambda m: "\\" + m.group(0), text)
        for code, text in segments(sql, dialect)
    )


def query_parameters(sql: str, dialect: str = "") -> list[str]:
    """The bind parameters of ``sql``'s code, in order of first use (``["since", "until"]``)."""
    found: dict[str, None] = {}
    for code, text in segments(sql, dialect):
        if code:
            found.update(dict.fromkeys(BIND.findall(text)))
    return list(found)


def _quoted_end(sql: str, i: int, dialect: str) -> int | None:
    """The end of the comment or quoted text starting at ``i``, or None if none starts there."""
    pair = sql[i : i + 2]
    if pair == "--" or (sql[i] == "#" and dialect in _MYSQL):
        newline = sql.find("\n", i)
        return len(sql) if newline < 0 else newline
    if pair == "/*" and not (dialect in _MYSQL and sql.startswith("/*!", i)):
        return _block_end(sql, i, nested=dialect == "postgresql")
    if sql[i] in "'\"`":
        escapes = sql[i] == "'" and (
            dialect in _MYSQL or (dialect == "postgresql" and _e_prefix(sql, i))
        )
        return _quote_end(sql, i, escapes)
    if sql[i] == "$" and dialect == "postgresql":
        tag = _DOLLAR.match(sql, i)
        if tag and not (i and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            close = sql.find(tag.group(0), tag.end())
            return len(sql) if close < 0 else close + len(tag.group(0))
    return None


def _e_prefix(sql: str, i: int) -> bool:
    """``E'…'`` (an escape string) rather than a name ending in e before a quote."""
    if i == 0 or sql[i - 1] not in "eE":
        return False
    return i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_")


def _block_end(sql: str, i: int, *, nested: bool) -> int:
    """The end of the ``/* … */`` comment at ``i`` (inner ``/*`` counted when ``nested``)."""
    depth, j = 0, i
    while j < len(sql):
        if sql.startswith("/*", j):
            depth = depth + 1 if nested or depth == 0 else depth
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(sql)


def _quote_end(sql: str, i: int, escapes: bool) -> int:
    """The end of the quoted text at ``i`` (a doubled quote inside; ``\\`` escapes if asked)."""
    quote, j = sql[i], i + 1
    while j < len(sql):
        if escapes and sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if sql[j + 1 : j + 2] != quote:
                return j + 1
            j += 2
        else:
            j += 1
    return len(sql)
