"""pipeline/staging/tables.py is the schema: the Alembic revisions build exactly it on every
dialect (Alembic's own comparison finds no difference), and they form one line of history."""

from __future__ import annotations

import itertools
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pipeline.staging import StagingStore
from pipeline.staging.migrations import head_revision, script_directory
from pipeline.staging.tables import metadata


def test_an_upgraded_empty_database_matches_tables_py(empty_url: str, backend: str) -> None:
    # Server defaults are compared on PostgreSQL only: Alembic reflects neither SQLite's nor
    # MySQL's identity columns, and reads MySQL's boolean default back as '0'.
    options: dict[str, Any] = {"compare_server_default": backend == "postgresql"}
    with StagingStore.open(empty_url) as store, store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts=options), metadata)
    assert differences == []


def test_the_revisions_form_one_line_of_history() -> None:
    script = script_directory()
    assert script.get_heads() == [head_revision()], "one head: merge or rebase a branch"
    assert script.get_bases() == ["0001_initial"]
    ordered = list(reversed(list(script.walk_revisions())))
    for parent, child in itertools.pairwise(ordered):
        assert child.down_revision == parent.revision, f"{child.revision} does not follow"
    for revision in ordered:
        assert not revision.is_merge_point, revision.revision
        assert not revision.is_branch_point, revision.revision
        number, _, name = revision.revision.partition("_")
        assert number.isdigit(), f"{revision.revision}: name revisions NNNN_<name>"
        assert name, f"{revision.revision}: name revisions NNNN_<name>"
        assert revision.path.endswith(f"r{revision.revision}.py"), revision.path
    numbers = [int(revision.revision[:4]) for revision in ordered]
    assert numbers == list(range(1, len(ordered) + 1)), "revisions are numbered 0001, 0002, …"


def test_mysql_tables_are_innodb_utf8mb4_binary(empty_url: str, backend: str) -> None:
    if backend != "mariadb":
        return
    with StagingStore.open(empty_url) as store, store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT table_name, engine, table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE()"
        ).all()
    assert {(engine, collation) for _, engine, collation in rows} == {("InnoDB", "utf8mb4_bin")}
