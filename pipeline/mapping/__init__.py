"""Declarative mapping files: ERP rows → AppZen invoices, without writing Python.

``load_mapping(path)`` reads and checks a file (:class:`MappingFileError` lists every problem as
``file:line path: message``); ``MappingEngine(spec).run(chunks)`` yields a :class:`MappedInvoice`
or a :class:`RejectedInvoice` per invoice. :func:`map_source` opens the mapping's own source(s) and
does both. The format is documented by ``mappings/mapping.schema.json`` and ``mappings/README.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

from pipeline.mapping.engine import MappedInvoice, MappingEngine, RejectedInvoice, Result
from pipeline.mapping.errors import MappingError
from pipeline.mapping.loader import MappingFileError, load_mapping
from pipeline.mapping.spec import MappingSpec

__all__ = [
    "MappedInvoice",
    "MappingEngine",
    "MappingError",
    "MappingFileError",
    "MappingSpec",
    "RejectedInvoice",
    "Result",
    "load_mapping",
    "map_source",
]


def map_source(
    spec: MappingSpec,
    params: Mapping[str, object] | None = None,
    *,
    base_dir: Path | None = None,
    erp_url: str | None = None,
) -> Iterator[Result]:
    """Open the mapping's source(s), check their columns up front, and map every invoice."""
    source = spec.open_source(base_dir, erp_url)
    lines = spec.open_lines_source(base_dir, erp_url)
    engine = MappingEngine(spec)
    engine.check_columns(
        source.columns(),
        None if lines is None else lines.columns(),
        source=source.describe(),
        lines_source="" if lines is None else lines.describe(),
    )
    bound = dict(params or {})
    return engine.run(source.chunks(bound), None if lines is None else lines.chunks(bound))
