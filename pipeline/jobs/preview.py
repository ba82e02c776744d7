"""Mapping a source without staging or sending: ``preview`` and ``mapping check``."""

from __future__ import annotations

from collections.abc import Generator

from pipeline.mapping.engine import Result
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.stream import map_stream, open_sources
from pipeline.settings import Settings


def mapped_results(
    spec: MappingSpec, settings: Settings, *, since: str | None = None
) -> Generator[Result, None, None]:
    """Map the mapping's source without staging or sending (preview, mapping check); close the
    generator when stopping early, so the source's connection closes at once."""
    erp = settings.erp_database_url
    url = erp.get_secret_value() if erp is not None else None
    sources = open_sources(spec, erp_url=url, settings=settings)
    return map_stream(spec, sources, {"since": since, "until": None})
