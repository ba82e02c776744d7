"""Writing the sample ERP: seeded invoices with a known set of dirty ones, and later touches."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipeline.devkit.sample_erp import catalog
from pipeline.devkit.sample_erp.schema import (
    create_schema,
    engine_for,
    invoice,
    invoice_line,
    latest_change,
    supplier,
)

DirtyReason = Literal["missing_supplier", "bad_date", "unknown_currency"]
DIRTY_REASONS: tuple[DirtyReason, ...] = ("missing_supplier", "bad_date", "unknown_currency")
UNKNOWN_CURRENCY = "XXY"
BAD_DATES = ("31.02.2021", "29.02.2023", "32.01.2024", "00.00.0000")
_BATCH = 500

Row = dict[str, object]


@dataclass(frozen=True, slots=True)
class DirtyInvoice:
    """An invoice the mapping must reject: why, and the column and value that make it bad."""

    document_no: str
    reason: DirtyReason
    column: str
    value: str | None


@dataclass(frozen=True, slots=True)
class GenerationReport:
    """What :func:`generate` wrote: counts, the dirty invoices and the notable clean ones."""

    seed: int
    invoices: int
    lines: int
    suppliers: int
    dirty: tuple[DirtyInvoice, ...]
    non_ascii: frozenset[str]
    """Clean invoices with non-ASCII text (names, descriptions): they must pass."""
    erp_errors: frozenset[str]
    """Clean invoices the ERP failed to take (``erp_error_*`` set): status-sync ``ERROR``."""
    last_updated_at: datetime

    @property
    def dirty_ids(self) -> dict[str, DirtyReason]:
        """``document_no`` → reason, for every dirty invoice."""
        return {item.document_no: item.reason for item in self.dirty}


@dataclass(frozen=True, slots=True)
class TouchedInvoice:
    """One invoice :func:`touch` changed: its status or its total (``before`` → ``after``)."""

    document_no: str
    change: Literal["status", "amount"]
    before: str
    after: str


@dataclass(frozen=True, slots=True)
class TouchReport:
    """What :func:`touch` changed; every touched invoice has ``updated_at`` set to this one."""

    updated_at: datetime
    touched: tuple[TouchedInvoice, ...]

    @property
    def document_nos(self) -> frozenset[str]:
        """The touched invoices."""
        return frozenset(item.document_no for item in self.touched)


def generate(
    url: str,
    *,
    invoices: int = 200,
    lines_per_invoice: tuple[int, int] = (1, 5),
    seed: int = 7,
    dirty_share: float = 0.04,
    erp_error_share: float = 0.03,
    start: date = date(2024, 1, 1),
    days: int = 365,
) -> GenerationReport:
    """(Re)create the sample ERP at ``url`` with ``invoices`` invoices; the same seed gives the same
    data. Posting dates fall in ``[start, start + days)``. Only the sample's tables are replaced.
    """
    _check(invoices, lines_per_invoice, dirty_share, erp_error_share, days)
    rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not a secret
    dirty_at = sorted(rng.sample(range(invoices), round(invoices * dirty_share)))
    reasons = {index: DIRTY_REASONS[n % len(DIRTY_REASONS)] for n, index in enumerate(dirty_at)}
    clean = [index for index in range(invoices) if index not in reasons]
    errors_at = frozenset(rng.sample(clean, round(invoices * erp_error_share)))
    drawer = _Drawer(rng, lines_per_invoice, start, days, reasons, errors_at)
    create_schema(url)
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            connection.execute(supplier.insert(), catalog.supplier_rows())
            for begin in range(0, invoices, _BATCH):
                drawer.insert(connection, range(begin, min(begin + _BATCH, invoices)))
    finally:
        engine.dispose()
    return drawer.report(seed, invoices)


def touch(url: str, *, count: int = 10, seed: int = 11, at: datetime | None = None) -> TouchReport:
    """Change ``count`` seeded invoices, alternately their status (one step on) and their first
    line's quantity (+ 1, every total recomputed), and set their ``updated_at`` to ``at``
    (default: the latest ``updated_at`` or payment + 1 minute)."""
    engine = engine_for(url)
    try:
        with engine.begin() as connection:
            keys = connection.execute(sa.select(invoice.c.invoice_key)).scalars().all()
            rng = random.Random(seed)  # noqa: S311 - reproducible sample data, not a secret
            chosen = sorted(rng.sample(sorted(keys), min(count, len(keys))))
            latest = latest_change(connection)  # after every payment too: status reads see it
            stamp = at or (latest or datetime(2000, 1, 1)) + timedelta(minutes=1)
            touched = [_touch_one(connection, key, n, stamp) for n, key in enumerate(chosen)]
    finally:
        engine.dispose()
    return TouchReport(stamp, tuple(touched))


@dataclass
class _Drawer:
    """Draws invoices from one seeded random stream and remembers what it drew."""

    rng: random.Random
    lines_per_invoice: tuple[int, int]
    start: date
    days: int
    reasons: dict[int, DirtyReason]
    errors_at: frozenset[int]
    dirty: list[DirtyInvoice] = field(default_factory=list)
    non_ascii: set[str] = field(default_factory=set)
    erp_errors: set[str] = field(default_factory=set)
    lines: int = 0
    last_updated_at: datetime = datetime.min

    def insert(self, connection: Connection, indexes: range) -> None:
        """Draw and insert the invoices at ``indexes``: headers first, then their lines."""
        drawn = [self._invoice(index) for index in indexes]
        if drawn:
            connection.execute(invoice.insert(), [header for header, _ in drawn])
            connection.execute(invoice_line.insert(), [row for _, rows in drawn for row in rows])

    def report(self, seed: int, invoices: int) -> GenerationReport:
        """Everything drawn so far."""
        return GenerationReport(
            seed=seed,
            invoices=invoices,
            lines=self.lines,
            suppliers=len(catalog.SUPPLIERS),
            dirty=tuple(self.dirty),
            non_ascii=frozenset(self.non_ascii),
            erp_errors=frozenset(self.erp_errors),
            last_updated_at=self.last_updated_at,
        )

    def _invoice(self, index: int) -> tuple[Row, list[Row]]:
        posting = self.start + timedelta(days=self.rng.randrange(self.days))
        header = catalog.header_row(self.rng, index + 1, posting)
        count = self.rng.randint(*self.lines_per_invoice)
        lines = [catalog.line_row(self.rng, header, number) for number in range(1, count + 1)]
        header |= catalog.header_totals(lines)
        document_no = str(header["document_no"])
        if index in self.errors_at:
            message, status, exception = self.rng.choice(catalog.ERP_ERRORS)
            header |= {
                "erp_error_message": message,
                "erp_error_status": status,
                "erp_error_exception": exception,
            }
            self.erp_errors.add(document_no)
        reason = self.reasons.get(index)
        if reason is not None:
            self.dirty.append(self._spoil(header, reason))
        elif not _all_ascii(header, lines):
            self.non_ascii.add(document_no)
        self.lines += len(lines)
        self.last_updated_at = max(self.last_updated_at, _timestamp(header["updated_at"]))
        return header, lines

    def _spoil(self, header: Row, reason: DirtyReason) -> DirtyInvoice:
        bad_date = BAD_DATES[len(self.dirty) % len(BAD_DATES)]
        column, value = {
            "missing_supplier": ("supplier_id", None),
            "bad_date": ("invoice_date_text", bad_date),
            "unknown_currency": ("currency", UNKNOWN_CURRENCY),
        }[reason]
        header[column] = value
        return DirtyInvoice(str(header["document_no"]), reason, column, value)


def _touch_one(connection: Connection, key: int, n: int, stamp: datetime) -> TouchedInvoice:
    row = connection.execute(sa.select(invoice).where(invoice.c.invoice_key == key)).one()
    statuses = catalog.STATUSES
    if n % 2 == 0 and row.status != statuses[-1]:
        after = statuses[statuses.index(row.status) + 1]
        _update_header(connection, key, {"status": after, "updated_at": stamp})
        return TouchedInvoice(row.document_no, "status", row.status, after)
    first_line = (invoice_line.c.invoice_key == key) & (invoice_line.c.line_number == 1)
    first = connection.execute(sa.select(invoice_line).where(first_line)).one()
    quantity = first.quantity + 1
    changed = catalog.line_amounts(quantity, first.unit_price, first.vat_rate)
    connection.execute(invoice_line.update().where(first_line).values(quantity=quantity, **changed))
    amounts = sa.select(invoice_line.c.line_amount, invoice_line.c.vat_amount)
    lines = connection.execute(amounts.where(invoice_line.c.invoice_key == key)).mappings()
    totals = catalog.header_totals([dict(line) for line in lines])
    _update_header(connection, key, {**totals, "updated_at": stamp})
    after_total = str(totals["total_amount"])
    return TouchedInvoice(row.document_no, "amount", str(row.total_amount), after_total)


def _update_header(connection: Connection, key: int, values: Row) -> None:
    connection.execute(invoice.update().where(invoice.c.invoice_key == key).values(**values))


def _all_ascii(header: Row, lines: list[Row]) -> bool:
    texts = [header["description"], header["company_name"], *(row["description"] for row in lines)]
    return all(str(text).isascii() for text in texts)


def _timestamp(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"updated_at must be a datetime, got {value!r}")
    return value


def _check(invoices: int, lines: tuple[int, int], dirty: float, errors: float, days: int) -> None:
    if invoices < 0 or days < 1:
        raise ValueError(f"invoices must be >= 0 and days >= 1, got {invoices} and {days}")
    if not 1 <= lines[0] <= lines[1]:
        raise ValueError(f"lines_per_invoice must be (low, high), 1 <= low <= high: {lines}")
    if min(dirty, errors) < 0 or dirty + errors > 1:
        raise ValueError(
            f"dirty_share ({dirty}) and erp_error_share ({errors}) must be >= 0, sum <= 1"
        )
