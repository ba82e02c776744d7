"""Bind parameters of a query file as the database sees them: not in comments or quoted text."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pipeline.extract.sqltext import bindable_text, query_parameters

CODE = "WHERE (:since IS NULL OR updated_at > :since) AND (:until IS NULL OR updated_at <= :until)"


@pytest.mark.parametrize(
    ("sql", "dialect", "expected"),
    [
        (f"SELECT * FROM t {CODE}", "", ["since", "until"]),
        ("-- uses :since\nSELECT * FROM t WHERE x > :until", "", ["until"]),
        ("SELECT * FROM t -- uses :since", "sqlite", []),
        ("SELECT /* :since\n :until */ 1 WHERE y = :until", "", ["until"]),
        ("SELECT ' :since ' AS a, 'it''s :until' AS b", "", []),
        ('SELECT 1 AS ":since", x::date FROM t WHERE y = :until', "postgresql", ["until"]),
        ("SELECT `:since` FROM t # :until\nWHERE a = :until", "mysql", ["until"]),
        ("SELECT 'a\\' :since' FROM t WHERE a = :until", "mariadb", ["until"]),
        ("SELECT E'a\\' :since' FROM t WHERE a = :until", "postgresql", ["until"]),
        ("SELECT $q$ :since $q$, $$ :since $$ FROM t WHERE a = :until", "postgresql", ["until"]),
        ("SELECT /* a /* :since */ :until */ 1", "postgresql", []),
        ("SELECT /* a /* :since */ :until */ 1", "sqlite", ["until"]),
        ("SELECT /*! :since */ 1", "mysql", ["since"]),
        ("SELECT x FROM t WHERE a = :since -- unterminated ' quote", "", ["since"]),
    ],
)
def test_parameters_are_those_of_the_code(sql: str, dialect: str, expected: list[str]) -> None:
    assert query_parameters(sql, dialect) == expected
    assert list(sa.text(bindable_text(sql, dialect)).compile().params) == expected


@pytest.mark.parametrize("url", ["sqlite://", "postgresql+psycopg://"])
def test_comments_and_quoted_text_reach_the_database_unchanged(url: str) -> None:
    dialect = sa.create_engine(url).dialect  # never connects
    sql = "SELECT ':since' AS a -- uses :since\n/* :until */ FROM t WHERE y > :since"
    compiled = str(sa.text(bindable_text(sql, dialect.name)).compile(dialect=dialect))
    head, _, tail = compiled.rpartition("y > ")
    assert head == "SELECT ':since' AS a -- uses :since\n/* :until */ FROM t WHERE "
    assert tail in {"?", "%(since)s"}
