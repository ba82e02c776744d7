"""Backfill windows and watermarks in the watermark column's own terms, per dialect and column type.

A backfill ``--from 2021-12-31 --to 2021-12-31`` binds the window :mod:`pipeline.load.partition`
cuts, through :func:`pipeline.runtime.watermarks.bound_params` exactly as a run does, into a query
``c > :since AND c <= :until``: it must read the invoices of 2021-12-31, all of them and only
them, whatever the column holds: text with ``T`` or a space, SAP's ``20211231093000``, DATE,
DATETIME/TIMESTAMP, and timestamptz. Text columns declare their shape (``watermark_format``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.extract.sql import SqlSource
from pipeline.load.partition import partition_range
from pipeline.runtime.watermarks import bound_params, text_watermark_problem
from tests.databases import DIALECTS, empty_database

MOMENTS = {
    "k1": datetime(2021, 12, 30, 9, 30),
    "k2": datetime(2021, 12, 30, 23, 59, 59),
    "k3": datetime(2021, 12, 31, 0, 0, 0),
    "k4": datetime(2021, 12, 31, 9, 30),
    "k5": datetime(2021, 12, 31, 23, 59, 59),
    "k6": datetime(2022, 1, 1, 0, 0, 0),
}
OF_THE_DAY = ["k3", "k4", "k5"]

# kind: (column type, value of a moment, watermark_format or None)
KINDS: dict[str, tuple[Any, Callable[[datetime], object], str | None]] = {
    "text with T": (sa.String(32), lambda m: m.strftime("%Y-%m-%dT%H:%M:%S"), "%Y-%m-%dT%H:%M:%S"),
    "text with a space": (sa.String(32), lambda m: f"{m:%Y-%m-%d %H:%M:%S}", "%Y-%m-%d %H:%M:%S"),
    "SAP text": (sa.String(14), lambda m: m.strftime("%Y%m%d%H%M%S"), "%Y%m%d%H%M%S"),
    "date": (sa.Date(), lambda m: m.date(), None),
    "timestamp": (sa.DateTime(), lambda m: m, None),
    "timestamptz": (sa.DateTime(timezone=True), lambda m: m.replace(tzinfo=UTC), None),
}


def _source(tmp_path: Path, url: str) -> SqlSource:
    (tmp_path / "sql").mkdir(exist_ok=True)
    (tmp_path / "sql" / "window.sql").write_text(
        "SELECT k, c FROM windowed\n"
        "WHERE (:since IS NULL OR c > :since) AND (:until IS NULL OR c <= :until)\n"
        "ORDER BY k\n",
        encoding="utf-8",
    )
    return SqlSource(url, Path("sql/window.sql"), base_dir=tmp_path)


def _fill(url: str, kind: str) -> None:
    column_type, value, _ = KINDS[kind]
    table = sa.Table(
        "windowed", sa.MetaData(), sa.Column("k", sa.String(8)), sa.Column("c", column_type)
    )
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        table.create(conn)
        rows = [{"k": k, "c": value(m)} for k, m in MOMENTS.items()]
        conn.execute(table.insert(), rows)
    engine.dispose()


def _keys(source: SqlSource, params: dict[str, object]) -> list[str]:
    found: list[str] = []
    for chunk in source.chunks(params):
        found.extend(str(k) for k in chunk.columns["k"])
    return found


SERVERS = {"postgresql": pytest.mark.postgres, "mariadb": pytest.mark.mariadb}
CASES = [
    pytest.param(dialect, kind, marks=[SERVERS[dialect]] if dialect in SERVERS else [])
    for dialect in ("sqlite", "postgresql", "mariadb")
    for kind in KINDS
    if kind != "timestamptz" or dialect == "postgresql"  # timestamptz is PostgreSQL's own
]


@pytest.mark.parametrize(("dialect", "kind"), CASES)
def test_a_one_day_backfill_reads_that_whole_day_and_nothing_else(
    tmp_path: Path, dialect: str, kind: str
) -> None:
    with empty_database(dialect, tmp_path, "window") as url:
        _fill(url, kind)
        source = _source(tmp_path, url)
        [window] = partition_range(date(2021, 12, 31), date(2021, 12, 31), 1)
        assert _keys(source, bound_params(*window, KINDS[kind][2])) == OF_THE_DAY


def test_without_its_shape_a_text_column_with_t_loses_the_day_on_sqlite(tmp_path: Path) -> None:
    """Why ``watermark_format`` exists (and ``mapping check`` asks for it): bound as timestamps,
    the bounds become ``2021-12-30 23:59:59.999999`` text, and ``'T' > ' '``."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    _fill(url, "text with T")
    [window] = partition_range(date(2021, 12, 31), date(2021, 12, 31), 1)
    assert _keys(_source(tmp_path, url), bound_params(*window)) == [
        "k1",
        "k2",
    ]  # 12-30, none of 12-31


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["text with T", "SAP text", "timestamp"])
def test_partitions_of_a_window_read_every_invoice_once(
    tmp_path: Path, dialect: str, kind: str
) -> None:
    with empty_database(dialect, tmp_path, "parts") as url:
        _fill(url, kind)
        source = _source(tmp_path, url)
        windows = partition_range(date(2021, 12, 30), date(2022, 1, 1), 3)
        read = [k for w in windows for k in _keys(source, bound_params(*w, KINDS[kind][2]))]
        assert sorted(read) == sorted(MOMENTS)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("kind", ["text with T", "SAP text", "text with a space", "timestamp"])
def test_a_stored_watermark_reads_exactly_what_came_after_it(
    tmp_path: Path, dialect: str, kind: str
) -> None:
    """Night 2 binds night 1's watermark (the column's value, stored as text) as :since."""
    with empty_database(dialect, tmp_path, "mark") as url:
        _fill(url, kind)
        source = _source(tmp_path, url)
        value = KINDS[kind][1](MOMENTS["k4"])
        stored = value.isoformat() if isinstance(value, datetime) else str(value)
        assert _keys(source, bound_params(stored, None, KINDS[kind][2])) == ["k5", "k6"]


def test_a_text_column_a_timestamp_cannot_compare_with_is_named_with_its_fix() -> None:
    problem = text_watermark_problem("2021-12-31T09:30:00", "sqlite", "CHANGED_AT")
    assert problem is not None
    assert "CHANGED_AT holds text ('2021-12-31T09:30:00')" in problem
    assert 'watermark_format: "%Y-%m-%dT%H:%M:%S"' in problem
    sap = text_watermark_problem("20211231093000", "postgresql", "ENTERED_AT")
    assert sap is not None
    assert 'watermark_format: "%Y%m%d%H%M%S"' in sap
    spaced = text_watermark_problem("2021-12-31 09:30:00", "postgresql", "X")
    assert spaced is not None
    assert "on postgresql" in spaced
    assert text_watermark_problem("2021-12-31 09:30:00", "sqlite", "X") is None
    assert text_watermark_problem("2021-12-31", "mysql", "X") is None
    assert text_watermark_problem(datetime(2021, 12, 31), "postgresql", "X") is None
    odd = text_watermark_problem("31.12.2021", "sqlite", "X")
    assert odd is not None
    assert "declare its strftime pattern as  watermark_format:" in odd
