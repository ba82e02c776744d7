"""Mapping a source without staging or sending: ``preview`` and ``mapping check``."""

from __future__ import annotations

from collections.abc import Generator

from pipeline.mapping.engine import MappedInvoice, MappingEngine, RejectedInvoice
from pipeline.mapping.spec import MappingSpec
from pipeline.settings import Settings


def mapped_results(
    spec: MappingSpec, settings: Settings, *, since: str | None = None
) -> Generator[MappedInvoice | RejectedInvoice, None, None]:
    """Map the mapping's source without staging or sending (preview, mapping check); close the
    generator when stopping early, so the source's connection closes at once."""
    erp = settings.erp_database_url
    url = erp.get_secret_value() if erp is not None else None
    source = spec.open_source(None, url, settings=settings)
    lines = spec.open_lines_source(None, url, settings=settings)
    engine = MappingEngine(spec)
    engine.check_columns(
        source.columns(), lines.columns() if lines else None, source=source.describe()
    )
    params = {"since": since, "until": None}
    chunks = source.chunks(params)
    line_chunks = lines.chunks(params) if lines else None
    try:
        yield from engine.run(chunks, line_chunks)
    finally:  # stopped early: end the sources' queries now, not at interpreter exit
        for stream in (chunks, line_chunks):
            close = getattr(stream, "close", None)
            if close is not None:
                close()
