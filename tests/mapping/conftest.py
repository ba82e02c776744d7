"""Helpers for mapping tests: write a mapping file, build chunks by hand, run the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest

from pipeline.extract.base import Chunk
from pipeline.mapping import MappedInvoice, MappingEngine, MappingSpec, RejectedInvoice, Result
from pipeline.mapping.loader import load_mapping

MINIMAL = """
source: {kind: csv, path: x.csv}
invoice_key: inv
header:
  invoice_number: inv
  invoice_date: date
  entity_id: {const: E1}
  supplier_id: sup
  total_amount: {amount: total, currency: cur}
invoice_lines:
  line_description: desc
  quantity: qty
  unit_price: {amount: price, currency: cur}
  total_amount: {amount: amount, currency: cur}
"""
Load = Callable[..., MappingSpec]
Write = Callable[..., Path]
COLUMNS = ["inv", "date", "sup", "total", "cur", "desc", "qty", "price", "amount"]


def row(inv: object = "A1", **values: object) -> list[object]:
    """A source row of the MINIMAL mapping, every cell text as a CSV gives it."""
    base: dict[str, object] = {
        "inv": inv,
        "date": "2024-12-31",
        "sup": "S1",
        "total": "10.00",
        "cur": "EUR",
        "desc": "Widget",
        "qty": "2",
        "price": "5.00",
        "amount": "10.00",
    }
    base.update(values)
    return [base[name] for name in COLUMNS]


def chunk(
    rows: Sequence[Sequence[object]],
    columns: Sequence[str] = COLUMNS,
    origin: str = "x.csv",
    first_row: int = 2,
) -> Chunk:
    """A chunk of object cells (values kept exactly as given)."""
    return Chunk.from_rows(list(columns), rows, origin, first_row)


def run(
    spec: MappingSpec, chunks: Iterable[Chunk], lines: Iterable[Chunk] | None = None
) -> list[Result]:
    """Every result of the engine."""
    return list(MappingEngine(spec).run(chunks, lines))


def mapped(results: list[Result]) -> list[MappedInvoice]:
    """Only the mapped invoices."""
    return [r for r in results if isinstance(r, MappedInvoice)]


def rejected(results: list[Result]) -> list[RejectedInvoice]:
    """Only the rejected invoices."""
    return [r for r in results if isinstance(r, RejectedInvoice)]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """``write(text, name="m.yaml") -> Path`` of a mapping file in a temporary project."""
    (tmp_path / "mappings").mkdir()

    def _write(text: str, name: str = "m.yaml") -> Path:
        path = tmp_path / "mappings" / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def load(write: Write) -> Load:
    """``load(text, **kwargs) -> MappingSpec`` from mapping text."""

    def _load(text: str, **kwargs: object) -> MappingSpec:
        return load_mapping(write(text), **kwargs)  # type: ignore[arg-type]  # kwargs: columns

    return _load


@pytest.fixture(scope="module")
def load_rich(tmp_path_factory: pytest.TempPathFactory) -> MappingSpec:
    """The property tests' mapping, which reads every column in several ways."""
    from tests.mapping.test_properties import RICH  # noqa: PLC0415

    path = tmp_path_factory.mktemp("rich") / "rich.yaml"
    path.write_text(RICH, encoding="utf-8")
    return load_mapping(path)
