"""The DDL in sql/staging/<dialect>/ and pipeline/staging/tables.py describe the same schema."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from pipeline.staging import StagingStore
from pipeline.staging.tables import metadata

Shape = dict[str, dict[str, Any]]


def family(type_: sa.types.TypeEngine[Any]) -> str:
    """A type as it matters here: bool, int, datetime, varchar(N) or text."""
    if isinstance(type_, sa.Boolean) or (
        isinstance(type_, mysql.TINYINT) and type_.display_width == 1
    ):
        return "bool"
    if isinstance(type_, sa.Integer):
        return "int"
    if isinstance(type_, sa.DateTime):
        return "datetime"
    if isinstance(type_, mysql.LONGTEXT):
        return "longtext"
    if isinstance(type_, sa.Text):
        return "text"
    if isinstance(type_, sa.String) and type_.length is not None:
        return f"varchar({type_.length})"
    return repr(type_)


def resolve(type_: sa.types.TypeEngine[Any], dialect: Dialect) -> sa.types.TypeEngine[Any]:
    """The type a column has on ``dialect``: its variant there, or a decorator's dialect impl."""
    chosen = type_._variant_mapping.get(dialect.name, type_)
    if isinstance(chosen, TypeDecorator):
        return chosen.load_dialect_impl(dialect)
    return chosen


def declared(dialect: Dialect) -> Shape:
    shape: Shape = {}
    for table in metadata.sorted_tables:
        shape[table.name] = {
            "columns": [
                (c.name, family(resolve(c.type, dialect)), c.nullable) for c in table.columns
            ],
            "primary_key": [c.name for c in table.primary_key.columns],
            "indexes": sorted(
                (str(i.name), tuple(c.name for c in i.columns), bool(i.unique))
                for i in table.indexes
            ),
            "foreign_keys": sorted(
                (
                    tuple(fk.column_keys),
                    fk.referred_table.name,
                    tuple(e.column.name for e in fk.elements),
                )
                for fk in table.foreign_key_constraints
            ),
        }
    return shape


def reflected(engine: sa.Engine) -> Shape:
    inspector = sa.inspect(engine)
    shape: Shape = {}
    for name in sorted(inspector.get_table_names()):
        shape[name] = {
            "columns": [
                (c["name"], family(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "indexes": sorted(
                (str(i["name"]), tuple(str(c) for c in i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            "foreign_keys": sorted(
                (
                    tuple(fk["constrained_columns"]),
                    fk["referred_table"],
                    tuple(fk["referred_columns"]),
                )
                for fk in inspector.get_foreign_keys(name)
            ),
        }
    return shape


def test_migrated_database_matches_tables_py(empty_url: str) -> None:
    with StagingStore.open(empty_url) as store:
        actual = reflected(store.engine)
        expected = declared(store.engine.dialect)
    assert sorted(actual) == sorted(expected)
    for table in expected:
        assert actual[table] == expected[table], table


def test_mysql_tables_are_innodb_utf8mb4_binary(empty_url: str, backend: str) -> None:
    if backend != "mariadb":
        return
    with StagingStore.open(empty_url) as store, store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT table_name, engine, table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE()"
        ).all()
    assert {(engine, collation) for _, engine, collation in rows} == {("InnoDB", "utf8mb4_bin")}
