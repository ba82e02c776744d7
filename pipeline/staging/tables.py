"""SQLAlchemy Core tables of the staging database: the one source of truth of its schema.

The Alembic revisions in ``pipeline/staging/alembic/versions`` build this schema step by step on
SQLite, PostgreSQL and MariaDB/MySQL; ``tests/staging/test_schema.py`` upgrades an empty database
of each dialect and asserts that Alembic's ``compare_metadata`` finds no difference with this
module. Change a table here, then add a revision that makes the same change.
"""

from __future__ import annotations

import sqlalchemy as sa

from pipeline.failures import FACT_CHARS
from pipeline.staging.coltypes import MYSQL_TABLE, LongText, RowId, UtcDateTime

KEY_CHARS = 255
"""Longest invoice id (and failure source key) the staging stores; MySQL indexes need a bound."""
MAPPING_CHARS = 200
HASH_CHARS = 128
STATUS_CHARS = 255

metadata = sa.MetaData()

# The versions of the pre-Alembic migration runner (1-4) and the row 5 revision 0005 writes:
# releases before Alembic read the highest version here, so that row makes them refuse this
# database ("upgrade appzen-etl") instead of re-running their 001 over it. Never written again.
schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime(), nullable=False),
    **MYSQL_TABLE,
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", RowId, sa.Identity(), primary_key=True, autoincrement=True),
    sa.Column("flow", sa.String(100), nullable=False),
    sa.Column("mapping", sa.String(MAPPING_CHARS), nullable=False),
    sa.Column("parameters", LongText, nullable=False),
    sa.Column("historical", sa.Boolean(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("counts", LongText),
    sa.Column("watermark", sa.String(255)),
    # 0006_run_parent: the run this one was started under (a backfill's partitions).
    sa.Column("parent_run_id", RowId),
    # 0010_run_owner: who runs it (the token its claims carry), where, and its heartbeat; why it
    # ended as it did (a crashed run: how its owner was found gone).
    sa.Column("owner", sa.String(200)),
    sa.Column("host", sa.String(255)),
    sa.Column("host_id", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("process_start", sa.String(64)),
    sa.Column("heartbeat_at", UtcDateTime()),
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("reason", LongText),
    sa.Index("ix_runs_mapping_status", "mapping", "status", "id"),
    sa.Index("ix_runs_parent", "parent_run_id", "id"),
    sa.Index("ix_runs_owner", "owner"),
    sa.Index("ix_runs_status", "status", "id"),
    sqlite_autoincrement=True,
    **MYSQL_TABLE,
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("mapping", sa.String(MAPPING_CHARS), primary_key=True),
    sa.Column("invoice_id", sa.String(KEY_CHARS), primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("payload_hash", sa.String(HASH_CHARS), nullable=False),
    sa.Column("acked_hash", sa.String(HASH_CHARS)),
    sa.Column("acked_payload", LongText),
    sa.Column("rejected_hash", sa.String(HASH_CHARS)),
    sa.Column("uuid", sa.String(100)),
    sa.Column("uuid_lost_at", UtcDateTime()),
    sa.Column("appzen_status", sa.String(16)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("send_count", sa.Integer, nullable=False),
    sa.Column("resent_after_crash", sa.Integer, nullable=False),
    sa.Column("last_http_status", sa.Integer),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", LongText),
    sa.Column("correlation_id", sa.String(128)),
    sa.Column("historical", sa.Boolean()),
    sa.Column("first_sent_at", UtcDateTime()),
    sa.Column("last_sent_at", UtcDateTime()),
    sa.Column("erp_status", sa.String(STATUS_CHARS)),
    sa.Column("erp_error", LongText),
    sa.Column("pushed_status", sa.String(STATUS_CHARS)),
    sa.Column("pushed_error", LongText),
    sa.Column("pushed_at", UtcDateTime()),
    sa.Column("push_count", sa.Integer, nullable=False),
    sa.Column("last_run_id", RowId),
    sa.Column("claimed_by", sa.String(200)),
    sa.Column("claim_expires_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    # 002_push_pending: (erp_status, erp_error) differs from (pushed_status, pushed_error).
    sa.Column("push_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    # 004_push_in_doubt: the (status, error) a push is out for, until its outcome is recorded.
    sa.Column("push_in_doubt", LongText),
    # 009_supplier_invoice: supplier + normalised supplier invoice number of the acked payload.
    sa.Column("supplier_invoice", sa.String(200)),
    # 0010_run_owner: the run that claimed it to send and has no clear answer recorded yet (set
    # by the claim, cleared by an acknowledgement or a refusal): a resend after it died is one
    # after a crash.
    sa.Column("in_doubt_run_id", RowId),
    # 0012_source_hash: the hash of the source rows (and mapping) that ``payload_hash`` came from.
    sa.Column("source_hash", sa.String(HASH_CHARS)),
    sa.Index("ix_invoices_state", "mapping", "state"),
    sa.Index("ix_invoices_supplier_invoice", "mapping", "supplier_invoice"),
    sa.Index("ix_invoices_push", "mapping", "push_pending", "invoice_id"),
    sa.Index("ix_invoices_uuid", "uuid"),  # 003_outcomes: search hits name their invoice by uuid
    **MYSQL_TABLE,
)

failures = sa.Table(
    "failures",
    metadata,
    sa.Column("id", RowId, sa.Identity(), primary_key=True, autoincrement=True),
    sa.Column("run_id", RowId, sa.ForeignKey("runs.id", name="fk_failures_run"), nullable=False),
    sa.Column("mapping", sa.String(MAPPING_CHARS), nullable=False),
    sa.Column("source_key", sa.String(KEY_CHARS)),
    sa.Column("source_location", LongText),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("message", LongText, nullable=False),
    sa.Column("field_path", LongText),
    sa.Column("source_column", LongText),
    sa.Column("value", LongText),
    sa.Column("hint", LongText),
    sa.Column("http_status", sa.Integer),
    sa.Column("error_code", sa.String(64)),
    sa.Column("correlation_id", sa.String(128)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_seen_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Index("ix_failures_run", "run_id", "id"),
    sa.Index("ix_failures_key", "mapping", "source_key", "rule", "first_seen_at"),
    sqlite_autoincrement=True,
    **MYSQL_TABLE,
)

# 003_outcomes: AppZen audit outcomes, and what the ERP-side systems were told (connectors).
audit_outcomes = sa.Table(
    "audit_outcomes",
    metadata,
    sa.Column("mapping", sa.String(MAPPING_CHARS), primary_key=True),
    sa.Column("invoice_id", sa.String(KEY_CHARS), primary_key=True),
    sa.Column("uuid", sa.String(100)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("appzen_status", sa.String(32)),
    sa.Column("risk_level", sa.String(32)),
    sa.Column("reason", sa.String(STATUS_CHARS)),
    sa.Column("message", LongText),
    sa.Column("rules", LongText),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("appzen_updated_at", UtcDateTime()),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Index("ix_audit_outcomes_outcome", "mapping", "outcome", "invoice_id"),
    **MYSQL_TABLE,
)

writebacks = sa.Table(
    "writebacks",
    metadata,
    sa.Column("mapping", sa.String(MAPPING_CHARS), primary_key=True),
    sa.Column("invoice_id", sa.String(KEY_CHARS), primary_key=True),
    sa.Column("target", sa.String(16), primary_key=True),
    sa.Column("uuid", sa.String(100)),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Column("detail", sa.String(STATUS_CHARS)),
    sa.Column("message", LongText),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    **MYSQL_TABLE,
)

# 0007_failure_ledger: one entry per invoice that failed to reach AppZen, open from its first
# failure until it is delivered, gone from the source, or dismissed with a reason.
failure_ledger = sa.Table(
    "failure_ledger",
    metadata,
    sa.Column("mapping", sa.String(MAPPING_CHARS), primary_key=True),
    sa.Column("invoice_id", sa.String(KEY_CHARS), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("invoice_number", sa.String(FACT_CHARS)),
    sa.Column("supplier_id", sa.String(FACT_CHARS)),
    sa.Column("supplier_name", sa.String(FACT_CHARS)),
    sa.Column("invoice_date", sa.String(FACT_CHARS)),
    sa.Column("total_amount", sa.String(FACT_CHARS)),
    sa.Column("currency", sa.String(FACT_CHARS)),
    sa.Column("first_seen_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("first_run_id", RowId, nullable=False),
    sa.Column("last_run_id", RowId, nullable=False),
    sa.Column("runs_seen", sa.Integer, nullable=False),
    sa.Column("closed_at", UtcDateTime()),
    sa.Column("closed_run_id", RowId),
    sa.Column("dismissed_by", sa.String(200)),
    sa.Column("dismissed_reason", LongText),
    sa.Index("ix_failure_ledger_state", "mapping", "state", "invoice_id"),
    **MYSQL_TABLE,
)

# 0008_appzen_budget: AppZen requests per (AppZen day, credentials, flow); flow '*' is the day's
# total, the row every take locks first (pipeline/staging/budget.py).
appzen_budget = sa.Table(
    "appzen_budget",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("flow", sa.String(32), primary_key=True),
    sa.Column("used", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    **MYSQL_TABLE,
)


# 0011_appzen_rate: the rate AppZen's 429s taught the last run, per account (endpoint and customer
# id fingerprint) (pipeline/staging/ratememory.py).
appzen_rate = sa.Table(
    "appzen_rate",
    metadata,
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("quota", sa.Float(), nullable=False),
    sa.Column("rate", sa.Float(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    **MYSQL_TABLE,
)
