"""SqlSource on SQLite, PostgreSQL and MariaDB: streaming, :since/:until, columns, errors."""

from __future__ import annotations

import sqlite3
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.devkit.sample_erp import GenerationReport, generate, invoice, touch
from pipeline.extract.base import Chunk, ExtractError, SourceError, SourceUnavailable
from pipeline.extract.sql import QueryChunk, SqlSource, _fetches
from tests.databases import DIALECTS, PG_ADMIN
from tests.extract.conftest import EXTRACT_SQL, REPO, MakeDatabase

PASSWORD = "s3cr3t-Pa55word"


def _source(url: str, chunk_rows: int = 20_000) -> SqlSource:
    return SqlSource(url, EXTRACT_SQL, base_dir=REPO, chunk_rows=chunk_rows)


def _inline(
    tmp_path: Path,
    sql: str,
    *,
    url: str | None = None,
    name: str = "query.sql",
    chunk_rows: int = 20_000,
) -> SqlSource:
    """A source running ``sql`` (written to ``<tmp_path>/sql/<name>``) on ``url`` (SQLite file)."""
    (tmp_path / "sql").mkdir(exist_ok=True)
    (tmp_path / "sql" / name).write_text(sql, encoding="utf-8")
    if url is None:
        sqlite3.connect(tmp_path / "db.sqlite").close()  # an empty database, there
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    return SqlSource(url, Path("sql") / name, base_dir=tmp_path, chunk_rows=chunk_rows)


def _frame(chunks: list[Chunk]) -> pd.DataFrame:
    """The chunks' columns as one object frame (values exactly as the chunks hold them)."""
    frames = [pd.DataFrame(dict(chunk.columns), dtype=object) for chunk in chunks]
    return pd.concat(frames, ignore_index=True)


def _drain(chunks: Iterator[Chunk], sizes: list[int]) -> None:
    for chunk in chunks:
        sizes.append(len(chunk))


def _updated(url: str) -> dict[str, datetime]:
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.select(invoice.c.document_no, invoice.c.updated_at))
            return {row.document_no: row.updated_at for row in rows}
    finally:
        engine.dispose()


def _with_password(url: str) -> str:
    """The same database, with a password the server ignores (trust authentication)."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


# --- streaming -----------------------------------------------------------------------------------
def test_streams_every_line_in_chunks_with_locations(
    sample_erp: tuple[str, GenerationReport],
) -> None:
    url, report = sample_erp
    chunks = list(_source(url, chunk_rows=25).chunks({}))

    assert [len(chunk) for chunk in chunks[:-1]] == [25] * (len(chunks) - 1)
    assert [chunk.first_row for chunk in chunks] == [1 + 25 * n for n in range(len(chunks))]
    assert all(isinstance(chunk, QueryChunk) for chunk in chunks)
    assert chunks[1].location(3) == "sql/sample_erp/extract.sql row 29"
    frame = _frame(chunks)
    assert len(frame) == report.lines
    keys = list(zip(frame["invoice_key"], frame["line_number"], strict=True))
    assert keys == sorted(keys)
    assert frame["document_no"].nunique() == report.invoices


def test_values_stay_native_and_exact(sample_erp: tuple[str, GenerationReport]) -> None:
    url, _ = sample_erp
    chunks = list(_source(url, chunk_rows=40).chunks({}))
    frame = _frame(chunks)

    assert all(type(values) is list for chunk in chunks for values in chunk.columns.values())
    sqlite = url.startswith("sqlite")
    money = Decimal if not sqlite else str
    assert all(isinstance(value, money) for value in frame["line_amount"])
    if not sqlite:
        assert isinstance(frame["posting_date"][0], date)
        assert isinstance(frame["updated_at"][0], datetime)
    for _, lines in frame.groupby("document_no"):
        net = sum(Decimal(str(value)) for value in lines["line_amount"])
        assert net == Decimal(str(lines["net_amount"].iloc[0]))
    missing = frame[frame["supplier_id"].isna()]
    assert all(value is None for value in missing["supplier_name"])


@pytest.mark.parametrize("chunk_rows", [1, 7, 20_000])
def test_rows_are_the_values_sqlalchemy_reads(
    sample_erp: tuple[str, GenerationReport], chunk_rows: int
) -> None:
    """Chunks carry the driver's row tuples (no SQLAlchemy ``Row``): every value and its type
    the same as a SQLAlchemy read of the same statement, every row once, chunks full."""
    url, report = sample_erp
    source = _source(url, chunk_rows=chunk_rows)
    chunks = list(source.chunks({}))
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            statement = source._statement(source._query(), {})
            expected = [tuple(row) for row in connection.execute(statement)]
    finally:
        engine.dispose()

    got = [tuple(row) for chunk in chunks for row in chunk.rows or ()]
    assert len(got) == report.lines
    assert got == expected
    assert [[type(v) for v in row] for row in got] == [[type(v) for v in row] for row in expected]
    assert [len(chunk) for chunk in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    first = chunks[0]
    assert first.names == [str(key) for key in first.columns]
    assert first.columns["document_no"] == [
        row[first.names.index("document_no")] for row in first.rows or ()
    ]
    assert next(first.records()) == dict(zip(first.names, got[0], strict=True))


def test_since_and_until_select_by_updated_at(sample_erp: tuple[str, GenerationReport]) -> None:
    url, _ = sample_erp
    updated = _updated(url)
    since, until = datetime(2024, 4, 1), datetime(2024, 8, 1, 12, 30)
    source = _source(url, chunk_rows=10)

    window = _frame(list(source.chunks({"since": since, "until": until})))
    after = _frame(list(source.chunks({"since": since, "unused": 1})))
    before = _frame(list(source.chunks({"since": None, "until": until})))

    assert set(window["document_no"]) == {k for k, v in updated.items() if since < v <= until}
    assert set(after["document_no"]) == {k for k, v in updated.items() if v > since}
    assert set(before["document_no"]) == {k for k, v in updated.items() if v <= until}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_incremental_run_sees_exactly_the_touched_invoices(
    dialect: str, make_database: MakeDatabase
) -> None:
    url = make_database(dialect)
    report = generate(url, invoices=30, seed=5)
    source = _source(url, chunk_rows=7)
    first = _frame(list(source.chunks({"until": report.last_updated_at})))
    assert first["document_no"].nunique() == 30

    touched = touch(url, count=6, seed=2)
    second = _frame(list(source.chunks({"since": report.last_updated_at})))

    assert set(second["document_no"]) == touched.document_nos
    assert len(touched.touched) == 6
    headers = second.drop_duplicates("document_no").set_index("document_no")
    for item in touched.touched:
        column = "invoice_status" if item.change == "status" else "total_amount"
        assert str(headers.loc[item.document_no, column]) == item.after


def test_a_query_without_parameters_ignores_params(tmp_path: Path) -> None:
    source = _inline(tmp_path, "SELECT 1 AS one UNION ALL SELECT 2;\n")
    chunks = list(source.chunks({"since": datetime(2024, 1, 1)}))
    assert _frame(chunks)["one"].tolist() == [1, 2]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_parameter_named_in_a_comment_or_text_is_not_bound(
    dialect: str, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """Night 2 of the issue: ``-- uses :since`` made every run with a watermark fail."""
    sql = (
        "-- uses :since (and /* :until */ in a comment)\n"
        "SELECT 'at :until' AS t, 1 AS one /* :until */\n"
        "WHERE :since IS NOT NULL -- :until\n"
    )
    source = _inline(tmp_path, sql, url=make_database(dialect))
    chunks = list(source.chunks({"since": datetime(2024, 1, 1), "until": datetime(2024, 2, 1)}))
    assert _frame(chunks)[["t", "one"]].values.tolist() == [["at :until", 1]]
    assert list(source.chunks({})) == []


def test_a_probe_names_the_round_that_fails(tmp_path: Path) -> None:
    good = _inline(tmp_path, "SELECT 1 AS one WHERE :since IS NOT NULL", name="good.sql")
    good.probe({"since": datetime(2024, 1, 1)}, "an incremental run")
    # Fails only once :since has a value (json(NULL) is NULL): the night-2 failure, on day 1.
    bad = _inline(tmp_path, "SELECT json(:since) AS j", name="bad.sql")
    assert _frame(list(bad.chunks({})))["j"].tolist() == [None]
    with pytest.raises(ExtractError) as caught:
        bad.probe({"since": datetime(2024, 1, 1)}, "an incremental run (:since bound)")
    message = str(caught.value)
    assert message.startswith("sql/bad.sql on sqlite:///")
    assert "the query fails on an incremental run (:since bound): malformed JSON" in message


def test_a_probe_runs_a_query_that_cannot_be_a_derived_table(tmp_path: Path) -> None:
    source = _inline(tmp_path, "PRAGMA table_info('sqlite_master')")
    source.probe({"since": datetime(2024, 1, 1)}, "an incremental run")


@pytest.mark.postgres
def test_a_probe_finds_a_type_error_only_a_bound_value_meets(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    sql = "SELECT x FROM (SELECT '2024-01-01' AS x) t WHERE (:since IS NULL OR x > :since)"
    source = _inline(tmp_path, sql, url=make_database("postgresql"), name="pg.sql")
    assert _frame(list(source.chunks({})))["x"].tolist() == ["2024-01-01"]
    with pytest.raises(ExtractError, match=r"fails on a window: .*operator does not exist"):
        source.probe({"since": datetime(2024, 1, 1)}, "a window")


def test_an_empty_result_yields_no_chunk(tmp_path: Path) -> None:
    source = _inline(tmp_path, "SELECT 1 AS one WHERE 1 = 0")
    assert list(source.chunks({})) == []
    assert source.columns() == ["one"]


# --- columns -------------------------------------------------------------------------------------
def test_columns_come_from_the_description(sample_erp: tuple[str, GenerationReport]) -> None:
    url, _ = sample_erp
    source = _source(url)
    columns = source.columns()
    first = next(iter(source.chunks({})))
    assert columns == first.names
    assert columns[:3] == ["invoice_key", "document_no", "supplier_invoice_no"]


def test_columns_of_a_query_that_cannot_be_a_derived_table(tmp_path: Path) -> None:
    source = _inline(tmp_path, "PRAGMA table_info('sqlite_master')")
    assert source.columns()[:3] == ["cid", "name", "type"]


def test_duplicate_column_names_are_refused(tmp_path: Path) -> None:
    source = _inline(tmp_path, "SELECT 1 AS id, 2 AS id")
    with pytest.raises(ExtractError, match=r"returns column\(s\) \['id'\] more than once"):
        list(source.chunks({}))


# --- errors --------------------------------------------------------------------------------------
def test_a_missing_query_file_names_it(tmp_path: Path) -> None:
    source = SqlSource("sqlite://", Path("sql/nope.sql"), base_dir=tmp_path)
    with pytest.raises(ExtractError, match=r"sql/nope.sql: cannot read the query file"):
        source.columns()


def test_a_query_error_names_the_file_and_the_database(tmp_path: Path) -> None:
    source = _inline(tmp_path, "SELECT no_such_column FROM sqlite_master", name="bad.sql")
    with pytest.raises(ExtractError) as caught:
        list(source.chunks({}))
    message = str(caught.value)
    assert message.startswith("sql/bad.sql on sqlite:///")
    assert "no such column: no_such_column" in message
    assert "fix the query in sql/bad.sql" in message


@pytest.mark.postgres
def test_postgres_query_error_masks_the_password(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    url = _with_password(make_database("postgresql"))
    source = _inline(tmp_path, "SELECT * FROM no_such_table", url=url, name="bad.sql")
    assert PASSWORD not in source.describe()

    with pytest.raises(ExtractError) as caught:
        list(source.chunks({}))

    message = str(caught.value)
    assert message.startswith("sql/bad.sql on postgresql+psycopg://postgres:***@127.0.0.1:5432")
    assert 'relation "no_such_table" does not exist' in message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:1/erp", id="postgresql"),
        pytest.param(f"mysql+pymysql://app:{PASSWORD}@127.0.0.1:1/erp", id="mariadb"),
        pytest.param(f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:5432/erp", id="bad-user"),
    ],
)
def test_a_failing_connection_never_shows_the_password(url: str) -> None:
    source = SqlSource(url, EXTRACT_SQL, base_dir=REPO)
    for call in (source.columns, lambda: list(source.chunks({}))):
        with pytest.raises(SourceUnavailable) as caught:  # no code from the server: transient
            call()
        message = str(caught.value)
        assert "cannot connect" in message
        assert "app:***@127.0.0.1" in message
        assert "sql/sample_erp/extract.sql" in message
        assert PASSWORD not in message
        assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"nosuchdb://app:{PASSWORD}@host/erp", "cannot use the database nosuchdb://app:***@host"),
        (f"postgresql+nodriver://app:{PASSWORD}@h/db", "check the URL's dialect and driver"),
        (f"not a url {PASSWORD}", "the database URL cannot be parsed (not shown"),
    ],
)
def test_a_bad_url_is_explained_without_the_password(url: str, expected: str) -> None:
    source = SqlSource(url, EXTRACT_SQL, base_dir=REPO)
    with pytest.raises(ExtractError) as caught:
        source.columns()
    assert expected in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in source.describe()


def test_a_secret_in_the_url_query_is_masked() -> None:
    url = f"postgresql+psycopg://127.0.0.1:1/erp?password={PASSWORD}&sslmode=disable"
    source = SqlSource(url, EXTRACT_SQL, base_dir=REPO)
    assert PASSWORD not in source.describe()
    with pytest.raises(SourceError) as caught:  # refused: the transient kind
        source.columns()
    assert PASSWORD not in str(caught.value)


def test_a_query_failing_halfway_names_the_rows_done(tmp_path: Path) -> None:
    source = _inline(
        tmp_path,
        "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 300)\n"
        "SELECT x, json(CASE WHEN x < 150 THEN '1' ELSE '{bad' END) AS v FROM s",
        chunk_rows=50,
    )
    seen: list[int] = []
    with pytest.raises(ExtractError, match=r"the query failed after 100 rows: malformed JSON"):
        _drain(source.chunks({}), seen)
    assert seen == [50, 50]


@pytest.mark.postgres
def test_a_connection_lost_halfway_is_a_transient_source_error(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    url = _with_password(make_database("postgresql"))
    sql = "SELECT pg_backend_pid() AS pid, x FROM generate_series(1, 200000) AS x"
    chunks = _inline(tmp_path, sql, url=url, chunk_rows=1000).chunks({})
    first = next(chunks)
    _terminate(int(str(first.columns["pid"][0])))

    sizes: list[int] = []
    with pytest.raises(SourceUnavailable) as caught:  # the server went away: a rerun may succeed
        _drain(chunks, sizes)
    assert "sql/query.sql on postgresql+psycopg://postgres:***@" in str(caught.value)
    # every row read before the failure was handed over first (some were read ahead)
    assert f"the query failed after {1000 + sum(sizes)} rows" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def _terminate(pid: int) -> None:
    engine = sa.create_engine(PG_ADMIN, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        engine.dispose()


_SERIES = {
    "sqlite": "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 100000)"
    " SELECT x, 'some text of a row' AS t FROM s",
    "postgresql": "SELECT x, 'some text of a row' AS t FROM generate_series(1, 100000) AS x",
    "mariadb": "SELECT seq AS x, 'some text of a row' AS t FROM seq_1_to_100000",
}


@pytest.mark.slow  # a large table, to watch memory
@pytest.mark.parametrize("dialect", DIALECTS)
def test_memory_stays_flat_while_streaming(
    dialect: str, make_database: MakeDatabase, tmp_path: Path
) -> None:
    """100,000 rows (~23 MB as fetched Python rows) stream in about 1 MB."""
    source = _inline(tmp_path, _SERIES[dialect], url=make_database(dialect), chunk_rows=2_000)
    next(iter(source.chunks({})))  # warm up: driver imports and dialect set-up are not rows
    rows = 0
    tracemalloc.start()
    try:
        for chunk in source.chunks({}):
            rows += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 100_000
    assert peak < 5_000_000


@pytest.mark.parametrize("missing", ["absent.db", "no-such-dir/erp.db"])
def test_a_sqlite_erp_that_is_not_there_is_refused_with_its_path(
    tmp_path: Path, missing: str
) -> None:
    """Connecting would create an empty database and the query would fail on "no such table"."""
    path = tmp_path / missing
    source = _inline(tmp_path, "SELECT 1 AS k", url=f"sqlite:///{path}")
    for read in (source.columns, lambda: list(source.chunks({}))):
        with pytest.raises(ExtractError) as caught:
            read()
        message = str(caught.value)
        assert f"the SQLite database {path} does not exist" in message
        assert ("no such directory" if "/" in missing else "no such file") in message
    assert not path.exists()


@pytest.mark.parametrize("size", [1, 2, 5])
def test_values_sqlalchemy_converts_are_read_through_sqlalchemy(size: int) -> None:
    """Where a result's columns have processors (a typed statement on a dialect that converts
    them: SQLite's Numeric), rows come through SQLAlchemy, converted; else straight from the
    DBAPI cursor; either way every row once, in fetches of ``size``."""
    engine = sa.create_engine("sqlite://", poolclass=NullPool)
    query = "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 7) "
    query += "SELECT x, x * 1.5 AS amount FROM s"
    try:
        with engine.connect() as connection:
            typed = sa.text(query).columns(x=sa.Integer, amount=sa.Numeric(10, 2))
            converted = list(_fetches(connection.execute(typed), size))
            plain = list(_fetches(connection.execute(sa.text(query)), size))
    finally:
        engine.dispose()

    for parts in (converted, plain):
        assert [len(part) for part in parts] == [size] * (7 // size) + (
            [7 % size] if 7 % size else []
        )
    assert [row for part in converted for row in part] == [
        (x, Decimal(str(x * 1.5)).quantize(Decimal("0.01"))) for x in range(1, 8)
    ]
    assert [row for part in plain for row in part] == [(x, x * 1.5) for x in range(1, 8)]
