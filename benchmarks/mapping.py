"""Row 3: map + validate + serialize + hash on one core, against a naive per-row interpreter.

Synthetic SQL-like chunks (native Decimal, date, datetime values in plain column lists) of
invoices with 5 lines each, 20,000 rows per chunk, as a SQL source yields them. CPU time of this
process only (``time.process_time``: other work on the machine inflates it less than wall
time), best of a few repeats. The baseline interprets the mapping for every row with
``iterrows`` (over the same rows as object frames, built before it is timed), a spec walk and
one pydantic model validation and dump per invoice: what a first implementation does.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.report import Figure
from pipeline.appzen.models import Invoice, WireModel, payload_json
from pipeline.extract.base import Chunk
from pipeline.mapping import MappedInvoice, MappingEngine, MappingSpec, load_mapping
from pipeline.mapping.fields import appzen_model_of, shape_of
from pipeline.mapping.leaves import Strict, ValueSpec
from pipeline.mapping.transforms import CANONICAL, converter, is_blank

TARGET = 20_000.0
LINES = 5
CHUNK_ROWS = 20_000
MAPPING = """
source: {kind: sql, query: sql/bench.sql}
invoice_key: invoice_id
watermark_column: updated_at
status: {column: status}
header:
  invoice_number: invoice_number
  invoice_date: invoice_date
  entity_id: entity_id
  supplier_id: supplier_id
  supplier_name: supplier_name
  invoice_status: status
  invoice_type: {column: doc_type, map: {STANDARD: INVOICE, CREDIT: CREDIT_NOTE}}
  total_amount: {amount: total, currency: currency}
invoice_lines:
  line_number: line_no
  line_description: description
  quantity: quantity
  unit_price: {amount: unit_price, currency: currency}
  total_amount: {amount: line_total, currency: currency}
  gl_code: gl_account
  line_vat_breakdown:
    - code: vat_code
      rate: vat_rate
      vat_amount: {amount: vat_amount, currency: currency}
"""
COLUMNS = [
    "invoice_id", "invoice_number", "invoice_date", "entity_id", "supplier_id", "supplier_name",
    "status", "doc_type", "total", "currency", "line_no", "description", "quantity",
    "unit_price", "line_total", "gl_account", "vat_code", "vat_rate", "vat_amount", "updated_at",
]  # fmt: skip


def load_spec() -> MappingSpec:
    """The benchmark's mapping (5-line invoices with money, VAT breakdowns and a value map)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.yaml"
        path.write_text(MAPPING, encoding="utf-8")
        return load_mapping(path)


def chunks(invoices: int) -> list[Chunk]:
    """Synthetic chunks as a SQL source gives them (native types, plain column lists)."""
    rows = [
        [
            f"INV{n:07d}", f"N{n}", date(2024, 1, 1 + n % 28), "E1", f"S{n % 100}", "Müller GmbH",
            "POSTED", "STANDARD", Decimal("1190.00"), "EUR", line, f"Widget {line}", Decimal("2"),
            Decimal("100.00"), Decimal("200.00"), "4000.100", "VAT19", Decimal("19.00"),
            Decimal("38.00"), datetime(2024, 1, 2, 3, 4, 5),
        ]
        for n in range(invoices)
        for line in range(1, LINES + 1)
    ]  # fmt: skip
    return [
        Chunk.from_rows(COLUMNS, rows[at : at + CHUNK_ROWS], "q", at + 1)
        for at in range(0, len(rows), CHUNK_ROWS)
    ]


def frames(source: list[Chunk]) -> list[pd.DataFrame]:
    """The chunks as object frames, for the naive baseline (built before it is timed)."""
    return [pd.DataFrame(dict(chunk.columns), dtype=object) for chunk in source]


# --- the naive baseline: interpret the spec for every row, one cell at a time ------------------
def _naive_value(spec: ValueSpec, model: type[WireModel], name: str, row: Any) -> object:
    if "const" in spec.model_fields_set:
        return spec.const
    raw = row[spec.column]
    if is_blank(raw):
        return None
    if spec.map is not None:
        return spec.map.get(str(raw))
    return converter(spec.type or shape_of(model, name).leaf_type, CANONICAL)(raw)


def _naive_object(spec: Strict, row: Any) -> dict[str, object]:
    model = appzen_model_of(type(spec))
    assert model is not None
    out: dict[str, object] = {}
    for name in spec.model_fields_set:
        value = getattr(spec, name)
        if isinstance(value, ValueSpec):
            out[name] = _naive_value(value, model, name, row)
        elif isinstance(value, list):
            out[name] = [_naive_object(entry, row) for entry in value]
        elif isinstance(value, Strict) and name not in ("extra",):
            out[name] = _naive_object(value, row)
    return {key: value for key, value in out.items() if value is not None}


def naive(spec: MappingSpec, source: list[pd.DataFrame]) -> Iterator[bytes]:
    """Per-row ``iterrows``, per-cell indexing and a spec walk per row: the baseline."""
    pending: list[Any] = []
    for piece in source:
        for _, row in piece.iterrows():
            if pending and row[spec.invoice_key] != pending[0][spec.invoice_key]:
                yield _naive_invoice(spec, pending)
                pending = []
            pending.append(row)
    if pending:
        yield _naive_invoice(spec, pending)


def _naive_invoice(spec: MappingSpec, rows: list[Any]) -> bytes:
    data = _naive_object(spec.header, rows[0])
    data["invoice_id"] = str(rows[0][spec.invoice_key])
    data["invoice_lines"] = [_naive_object(spec.invoice_lines, row) for row in rows]
    payload = payload_json(Invoice.model_validate(data))
    hashlib.sha256(payload).hexdigest()
    return payload


def _cpu_rate(invoices: int, work: Iterator[object]) -> float:
    started = time.process_time()
    count = sum(1 for _ in work)
    spent = time.process_time() - started
    if count != invoices:
        raise RuntimeError(f"expected {invoices} results, got {count}")
    return invoices / spent


def row3(invoices: int = 20_000, repeats: int = 3) -> Figure:
    """Invoices per CPU second of the engine (best of ``repeats``) ÷ the naive baseline's."""
    spec = load_spec()
    check = [r for r in MappingEngine(spec).run(chunks(50)) if isinstance(r, MappedInvoice)]
    if len(check) != 50:
        raise RuntimeError("the benchmark mapping rejects its own synthetic invoices")
    source = chunks(invoices)
    engine = max(_cpu_rate(invoices, MappingEngine(spec).run(source)) for _ in range(repeats))
    small = max(1, invoices // 10)
    baseline_source = frames(chunks(small))
    baseline = max(_cpu_rate(small, naive(spec, baseline_source)) for _ in range(2))
    return Figure(
        row="3",
        what=f"Map + validate + serialize + hash, {LINES}-line invoices, one core (CPU time)",
        measured=f"{engine:,.0f} invoices/s",
        baseline=f"naive per-row interpreter: {baseline:,.0f} invoices/s",
        ratio=engine / baseline,
        target=f">= {TARGET:,.0f} invoices/s",
        met=engine >= TARGET,
        detail={"engine_rate": engine, "naive_rate": baseline, "invoices": invoices},
    )
