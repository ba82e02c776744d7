"""What a database holds, for ``mapping init``: its tables and views, their columns, keys and
foreign keys, and a few sample rows of the tables a draft reads (SQLAlchemy's inspector, any
dialect). Nothing is written; a URL is shown with its password masked."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from pipeline.scaffold.errors import InitError
from pipeline.settings import mask_url

MAX_TABLES = 300
"""More tables than this (an ERP schema) need ``--tables`` or ``--schema``: reflecting them all
would take minutes."""
SAMPLE_ROWS = 200


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of a table refer to ``referred_columns`` of ``referred_table``."""

    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]


@dataclass
class TableInfo:
    """A table's columns (as the database spells them), SQL types, keys and sample rows."""

    name: str
    columns: list[str]
    types: dict[str, str]
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    samples: dict[str, list[object]] = field(default_factory=dict)


@contextmanager
def connected(url: str) -> Iterator[Engine]:
    """An engine on ``url`` that is disposed of afterwards; a bad URL is an :class:`InitError`."""
    try:
        engine = sa.create_engine(url, poolclass=NullPool)
    except (sa.exc.ArgumentError, ImportError, ValueError) as error:
        raise InitError(
            f"--from-db {mask_url(url)}: not a usable database URL ({error}); write it as "
            "dialect+driver://user:password@host/database"
        ) from None
    try:
        yield engine
    except sa.exc.SQLAlchemyError as error:
        detail = " ".join(mask_url(str(getattr(error, "orig", None) or error)).split())[:400]
        raise InitError(
            f"--from-db {mask_url(url)}: {detail}; check the URL and the server"
        ) from None
    finally:
        engine.dispose()


def table_names(engine: Engine, schema: str | None, wanted: Sequence[str] = ()) -> list[str]:
    """The tables and views of ``schema`` (default: the connection's), limited to ``wanted``
    (matched ignoring case) when given."""
    inspector = sa.inspect(engine)
    names = [*inspector.get_table_names(schema=schema), *inspector.get_view_names(schema=schema)]
    if not wanted:
        return sorted(set(names))
    by_fold = {name.casefold(): name for name in names}
    missing = [name for name in wanted if name.casefold() not in by_fold]
    if missing:
        raise InitError(
            f"--tables: no table {', '.join(map(repr, missing))} in "
            f"{schema or 'the default schema'} (it has {len(names)} tables and views)"
        )
    return [by_fold[name.casefold()] for name in wanted]


def describe(engine: Engine, names: Sequence[str], schema: str | None) -> list[TableInfo]:
    """Columns, keys and foreign keys of each table (no rows read)."""
    if len(names) > MAX_TABLES:
        raise InitError(
            f"--from-db: {len(names)} tables and views in {schema or 'the default schema'}; name "
            "the invoice tables with --tables (e.g. --tables invoice,invoice_line,supplier)"
        )
    inspector = sa.inspect(engine)
    return [_table(inspector, name, schema) for name in names]


def _table(inspector: sa.Inspector, name: str, schema: str | None) -> TableInfo:
    columns = inspector.get_columns(name, schema=schema)
    info = TableInfo(
        name=name,
        columns=[str(column["name"]) for column in columns],
        types={str(column["name"]): str(column["type"]) for column in columns},
    )
    try:
        info.primary_key = tuple(
            inspector.get_pk_constraint(name, schema=schema)["constrained_columns"]
        )
        info.foreign_keys = [
            ForeignKey(tuple(fk["constrained_columns"]), fk["referred_table"],
                       tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(name, schema=schema)
        ]  # fmt: skip
    except NotImplementedError:  # views on some dialects: no constraints to tell
        pass
    return info


def sample(engine: Engine, table: TableInfo, schema: str | None, rows: int = SAMPLE_ROWS) -> None:
    """Fill ``table.samples`` with up to ``rows`` rows' values per column, as the driver gives
    them (no type processing: a bad date in a text replica must not stop the inspection)."""
    query = sa.select(sa.text("*")).select_from(sa.table(table.name, schema=schema)).limit(rows)
    with engine.connect() as connection:
        result = connection.execute(query)
        keys = [str(key) for key in result.keys()]  # noqa: SIM118 - a Result, not a dict
        values: list[list[object]] = [[] for _ in keys]
        for row in result:
            for index, value in enumerate(row):
                values[index].append(value)
    table.samples = dict(zip(keys, values, strict=True))
