"""The pre-Alembic migration runner, reduced to what the upgrade tests need: it builds a staging
database as releases before Alembic did, from ``legacy_sql/<dialect>/NNN_<name>.sql`` (copies of
the ``sql/staging`` files those releases shipped), one transaction and one ``schema_migrations``
row per file."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from pipeline.staging.engine import backend_of, create_staging_engine
from pipeline.staging.tables import schema_migrations

LEGACY_SQL = Path(__file__).parent / "legacy_sql"
LEGACY_LATEST = 4


def statements(path: Path) -> list[str]:
    """The file's statements: ``--`` lines dropped, split at a ``;`` ending a line."""
    lines = path.read_text("utf-8").splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";[ \t]*(?:\n|$)", text) if part.strip()]


def apply_legacy(url: str, version: int) -> None:
    """Migrate the empty database at ``url`` to legacy ``version`` as the old runner did."""
    files = sorted((LEGACY_SQL / backend_of(url)).glob("*.sql"))[:version]
    assert len(files) == version, f"no legacy migration {version}"
    engine = create_staging_engine(url, 30)
    try:
        with engine.connect() as conn:
            for number, path in enumerate(files, start=1):
                with conn.begin():
                    for statement in statements(path):
                        conn.exec_driver_sql(statement)
                    name = path.stem.split("_", 1)[1]
                    conn.execute(
                        sa.insert(schema_migrations).values(
                            version=number, name=name, applied_at=datetime.now(UTC)
                        )
                    )
    finally:
        engine.dispose()
