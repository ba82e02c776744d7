"""0001_initial: runs, invoices and failures (the pre-Alembic ``001_initial.sql``).

Timestamps are naive UTC (DATETIME(6) on MySQL); long text is LONGTEXT on MySQL; MySQL tables
are InnoDB, utf8mb4 with binary collation; row ids are identity columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging import legacy
from pipeline.staging.coltypes import MYSQL_TABLE, LongText, RowId, UtcDateTime

revision = "0001_initial"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables of version 1."""
    op.create_table(
        "schema_migrations",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE,
    )
    _runs()
    _invoices()
    _failures()
    legacy.record(1, "initial")


def _runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", RowId, sa.Identity(), primary_key=True, autoincrement=True),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("mapping", sa.String(200), nullable=False),
        sa.Column("parameters", LongText, nullable=False),
        sa.Column("historical", sa.Boolean(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("counts", LongText),
        sa.Column("watermark", sa.String(255)),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    op.create_index("ix_runs_mapping_status", "runs", ["mapping", "status", "id"])


def _invoices() -> None:
    op.create_table(
        "invoices",
        sa.Column("mapping", sa.String(200), primary_key=True),
        sa.Column("invoice_id", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("payload_hash", sa.String(128), nullable=False),
        sa.Column("acked_hash", sa.String(128)),
        sa.Column("acked_payload", LongText),
        sa.Column("rejected_hash", sa.String(128)),
        sa.Column("uuid", sa.String(100)),
        sa.Column("uuid_lost_at", UtcDateTime()),
        sa.Column("appzen_status", sa.String(16)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("resent_after_crash", sa.Integer(), nullable=False),
        sa.Column("last_http_status", sa.Integer()),
        sa.Column("error_code", sa.String(64)),
        sa.Column("error_message", LongText),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("historical", sa.Boolean()),
        sa.Column("first_sent_at", UtcDateTime()),
        sa.Column("last_sent_at", UtcDateTime()),
        sa.Column("erp_status", sa.String(255)),
        sa.Column("erp_error", LongText),
        sa.Column("pushed_status", sa.String(255)),
        sa.Column("pushed_error", LongText),
        sa.Column("pushed_at", UtcDateTime()),
        sa.Column("push_count", sa.Integer(), nullable=False),
        sa.Column("last_run_id", RowId),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claim_expires_at", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        **MYSQL_TABLE,
    )
    op.create_index("ix_invoices_state", "invoices", ["mapping", "state"])


def _failures() -> None:
    op.create_table(
        "failures",
        sa.Column("id", RowId, sa.Identity(), primary_key=True, autoincrement=True),
        sa.Column("run_id", RowId, nullable=False),
        sa.Column("mapping", sa.String(200), nullable=False),
        sa.Column("source_key", sa.String(255)),
        sa.Column("source_location", LongText),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("message", LongText, nullable=False),
        sa.Column("field_path", LongText),
        sa.Column("source_column", LongText),
        sa.Column("value", LongText),
        sa.Column("hint", LongText),
        sa.Column("http_status", sa.Integer()),
        sa.Column("error_code", sa.String(64)),
        sa.Column("correlation_id", sa.String(128)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_failures_run"),
        # Also the FK's index: MySQL drops the index it made for the FK once this one exists.
        sa.Index("ix_failures_run", "run_id", "id"),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    op.create_index(
        "ix_failures_key", "failures", ["mapping", "source_key", "rule", "first_seen_at"]
    )


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
