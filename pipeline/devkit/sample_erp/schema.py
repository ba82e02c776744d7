"""The sample ERP's tables on SQLAlchemy Core (any dialect); ``sql/sample_erp/schema.sql`` mirrors
them as reference DDL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import NullPool


class ExactDecimal(sa.types.TypeDecorator[Decimal]):
    """``NUMERIC(precision, scale)``; exact decimal text on SQLite, which has no decimal type."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        """VARCHAR on SQLite (its NUMERIC would store a float), NUMERIC elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        """Decimals go to SQLite as plain text (``12.50``)."""
        if value is None or dialect.name != "sqlite":
            return value
        return f"{Decimal(value):f}"

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Back to :class:`~decimal.Decimal` whatever the database stored."""
        return None if value is None else Decimal(str(value))


def _money() -> ExactDecimal:
    return ExactDecimal(18, 2, asdecimal=True)


metadata = sa.MetaData()

supplier = sa.Table(
    "erp_supplier",
    metadata,
    sa.Column("supplier_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("supplier_number", sa.String(20), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("vat_number", sa.String(32)),
    sa.Column("street", sa.String(200), nullable=False),
    sa.Column("city", sa.String(100), nullable=False),
    sa.Column("postal_code", sa.String(20), nullable=False),
    sa.Column("country_code", sa.String(2), nullable=False),
    sa.Column("email", sa.String(200)),
    sa.Column("bank_account_last4", sa.String(4)),
    mysql_charset="utf8mb4",
)

invoice = sa.Table(
    "erp_invoice",
    metadata,
    sa.Column("invoice_key", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document_no", sa.String(20), nullable=False, unique=True),
    sa.Column("supplier_invoice_no", sa.String(40), nullable=False),
    sa.Column("company_code", sa.String(8), nullable=False),
    sa.Column("company_name", sa.String(200), nullable=False),
    sa.Column("supplier_id", sa.Integer, sa.ForeignKey("erp_supplier.supplier_id")),
    sa.Column("invoice_date_text", sa.String(20)),
    sa.Column("posting_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("net_amount", _money(), nullable=False),
    sa.Column("vat_amount", _money(), nullable=False),
    sa.Column("total_amount", _money(), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("payment_terms", sa.String(10)),
    sa.Column("purchase_order_no", sa.String(20)),
    sa.Column("cost_center", sa.String(10)),
    sa.Column("description", sa.String(500)),
    sa.Column("document_uuid", sa.String(36)),
    sa.Column("erp_error_message", sa.String(500)),
    sa.Column("erp_error_status", sa.String(40)),
    sa.Column("erp_error_exception", sa.String(500)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, index=True),
    mysql_charset="utf8mb4",
)

invoice_line = sa.Table(
    "erp_invoice_line",
    metadata,
    sa.Column(
        "invoice_key",
        sa.Integer,
        sa.ForeignKey("erp_invoice.invoice_key"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("line_number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("item_code", sa.String(20)),
    sa.Column("quantity", ExactDecimal(12, 2, asdecimal=True), nullable=False),
    sa.Column("unit_of_measure", sa.String(10), nullable=False),
    sa.Column("unit_price", _money(), nullable=False),
    sa.Column("line_amount", _money(), nullable=False),
    sa.Column("vat_code", sa.String(8), nullable=False),
    sa.Column("vat_rate", ExactDecimal(5, 2, asdecimal=True), nullable=False),
    sa.Column("vat_amount", _money(), nullable=False),
    sa.Column("gl_account", sa.String(10), nullable=False),
    sa.Column("cost_center", sa.String(10), nullable=False),
    mysql_charset="utf8mb4",
)


payment = sa.Table(
    "erp_payment",
    metadata,
    sa.Column("payment_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("invoice_key", sa.Integer, sa.ForeignKey("erp_invoice.invoice_key"), nullable=False),
    sa.Column("amount", _money(), nullable=False),
    sa.Column("paid_on", sa.Date, nullable=False),
    # When the payment was recorded: the invoice's updated_at does not move (status read watermark).
    sa.Column("recorded_at", sa.DateTime, nullable=False),
    sa.Index("ix_erp_payment_invoice", "invoice_key", "recorded_at"),
    mysql_charset="utf8mb4",
)


def latest_change(connection: Connection) -> datetime | None:
    """The latest ``updated_at`` of an invoice or ``recorded_at`` of a payment (None: empty)."""
    stamps = [
        connection.execute(sa.select(sa.func.max(invoice.c.updated_at))).scalar(),
        connection.execute(sa.select(sa.func.max(payment.c.recorded_at))).scalar(),
    ]
    known = [stamp for stamp in stamps if stamp is not None]
    return max(known) if known else None


def engine_for(url: str) -> Engine:
    """An engine that keeps no connection open once released (tools, tests); a SQLite file's
    folder is created when missing (``sqlite:///.state/deploy/erp.db`` on a fresh clone)."""
    parsed = sa.make_url(url)
    database = parsed.database or ""
    on_disk = database not in {"", ":memory:"} and not database.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and on_disk:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    return sa.create_engine(url, poolclass=NullPool)


def create_schema(url: str) -> None:
    """Drop the sample ERP tables (only those) if they exist and create them empty."""
    engine = engine_for(url)
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
    finally:
        engine.dispose()


def drop_schema(url: str) -> None:
    """Drop the sample ERP tables if they exist."""
    engine = engine_for(url)
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()
