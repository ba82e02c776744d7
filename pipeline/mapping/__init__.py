"""Declarative mapping files: ERP rows → AppZen invoices, without writing Python.

``load_mapping(path)`` reads and checks a file (:class:`MappingFileError` lists every problem as
``file:line path: message``); ``MappingEngine(spec).run(chunks)`` yields a :class:`MappedInvoice`
or a :class:`RejectedInvoice` per invoice. :func:`map_source` opens the mapping's own source(s) and
does both. The format is documented by ``mappings/mapping.schema.json`` and ``mappings/README.md``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from pathlib import Path

from pipeline.mapping.engine import MappedInvoice, MappingEngine, RejectedInvoice, Result
from pipeline.mapping.errors import MappingError
from pipeline.mapping.loader import MappingFileError, load_mapping
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.stream import Sources, map_stream, open_sources

__all__ = [
    "MappedInvoice",
    "MappingEngine",
    "MappingError",
    "MappingFileError",
    "MappingSpec",
    "RejectedInvoice",
    "Result",
    "Sources",
    "load_mapping",
    "map_source",
    "map_stream",
    "open_sources",
]


def map_source(
    spec: MappingSpec,
    params: Mapping[str, object] | None = None,
    *,
    base_dir: Path | None = None,
    erp_url: str | None = None,
) -> Generator[Result, None, None]:
    """Open the mapping's source(s), check their columns up front, and map every invoice."""
    return map_stream(spec, open_sources(spec, base_dir=base_dir, erp_url=erp_url), params)
