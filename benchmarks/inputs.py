"""Benchmark inputs: the sample ERP at scale (SQLite or PostgreSQL) and a flat CSV export.

Large sample ERPs are drawn with :func:`pipeline.devkit.sample_erp.generate` once (``base``
invoices), then copied in SQL with shifted keys until they hold the number asked for: the same
realistic rows (non-ASCII names, NULLs, ERP errors, dirty rows if asked), at database speed."""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.devkit.sample_erp import generate, invoice, invoice_line

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/test"
FLAT_COLUMNS = (
    "invoice_no", "invoice_date", "due_date", "company_code", "supplier_no", "supplier_name",
    "supplier_vat_id", "supplier_country", "currency", "net_total", "vat_total", "gross_total",
    "status", "line_no", "line_text", "quantity", "unit", "unit_price", "line_net", "vat_rate",
    "vat_code", "gl_account", "cost_center",
)  # fmt: skip
_SUPPLIERS = (
    ("V100001", "Müller Bürobedarf GmbH", "DE811234567", "DE"),
    ("V100002", "Société Générale de Fournitures SA", "FR40303265045", "FR"),
    ("V100003", "Acme Office Supplies Ltd", "GB123456789", "GB"),
    ("V100004", "株式会社山田商事", "", "JP"),
)
_STATUSES = ("PARKED", "APPROVED", "POSTED", "PAID")


def sample_erp(
    url: str, invoices: int, *, base: int = 10_000, seed: int = 7, lines: bool = True
) -> int:
    """(Re)create the sample ERP at ``url`` with ``invoices`` invoices (no dirty ones; 3 % with
    an ERP error); the number of line rows (``lines=False``: copies get no lines, for rows that
    read only headers)."""
    drawn = min(base, invoices)
    report = generate(url, invoices=drawn, seed=seed, dirty_share=0.0, erp_error_share=0.03)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for start in range(drawn, invoices, drawn):
                _copy(conn, offset=start, count=min(drawn, invoices - start), lines=lines)
            rows = conn.execute(sa.select(sa.func.count()).select_from(invoice_line)).scalar()
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    assert rows is not None
    return int(rows) if invoices > drawn else report.lines


def _copy(conn: sa.Connection, *, offset: int, count: int, lines: bool = True) -> None:
    """Copy invoices 1..count (and their lines) as keys offset+1..offset+count."""
    key = invoice.c.invoice_key + offset
    # '51' + 8 digits for the drawn invoices (catalog.header_row); '52' + 8 digits for copies.
    number = sa.literal("52") + sa.func.substr(sa.cast(key + 100_000_000, sa.String), 2)
    header_columns = [c for c in invoice.c if c.name not in ("invoice_key", "document_no")]
    picked = sa.select(key, number, *header_columns).where(invoice.c.invoice_key <= count)
    names = ["invoice_key", "document_no", *(c.name for c in header_columns)]
    conn.execute(invoice.insert().from_select(names, picked))
    if not lines:
        return
    line_columns = [c for c in invoice_line.c if c.name != "invoice_key"]
    copied = sa.select(invoice_line.c.invoice_key + offset, *line_columns).where(
        invoice_line.c.invoice_key <= count
    )
    names = ["invoice_key", *(c.name for c in line_columns)]
    conn.execute(invoice_line.insert().from_select(names, copied))


@contextmanager
def pg_schema(prefix: str = "bench") -> Iterator[str]:
    """A fresh PostgreSQL schema (dropped afterwards): the URL selecting it."""
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        yield f"{PG_ADMIN}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


@contextmanager
def mariadb_database(prefix: str = "bench") -> Iterator[str]:
    """A fresh MariaDB database (utf8mb4, binary collation; dropped afterwards): its URL."""
    admin = sa.create_engine(MARIADB_ADMIN, poolclass=NullPool)
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        yield MARIADB_ADMIN.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


def flat_csv(folder: Path, invoices: int, lines_per_invoice: int = 1) -> Path:
    """A flat AP export like ``samples/flat_ap_export.csv`` (``;``, European numbers) with
    ``invoices`` invoices, and a copy of ``mappings/flat_csv.yaml`` reading it; the mapping."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "flat.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";", lineterminator="\n")
        writer.writerow(FLAT_COLUMNS)
        for number in range(invoices):
            writer.writerows(_flat_rows(number, lines_per_invoice))
    mapping = (REPO / "mappings" / "flat_csv.yaml").read_text(encoding="utf-8")
    target = folder / "mappings" / "flat_csv.yaml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(mapping.replace("samples/flat_ap_export.csv", "flat.csv"), encoding="utf-8")
    return target


def _flat_rows(number: int, lines: int) -> list[tuple[str, ...]]:
    supplier, name, vat_id, country = _SUPPLIERS[number % len(_SUPPLIERS)]
    day, month = 1 + number % 28, 1 + number % 12
    quantity, cents = 1 + number % 9, 1_000 + (number * 37) % 90_000
    net = quantity * cents
    vat = net * 19 // 100
    totals = (_euro(net * lines), _euro(vat * lines), _euro((net + vat) * lines))
    header = (
        f"AP-{number:09d}", f"{day:02d}.{month:02d}.2024", f"{day:02d}.{month:02d}.2025", "DE01",
        supplier, name, vat_id, country, "EUR", *totals, _STATUSES[number % 4],
    )  # fmt: skip
    return [
        (
            *header,
            str(line),
            f"Position {line}: Büromaterial",
            str(quantity),
            "EA",
            _euro(cents),
            _euro(net),
            "19,00",
            "V19",
            f"6{number % 1000:03d}",
            "CC2100",
        )
        for line in range(1, lines + 1)
    ]


def _euro(cents: int) -> str:
    """``123456`` → ``1.234,56``."""
    units, rest = divmod(cents, 100)
    return f"{units:,}".replace(",", ".") + f",{rest:02d}"
