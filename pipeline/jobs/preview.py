"""Mapping a source without staging or sending: ``preview`` and ``mapping check``."""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta

from pipeline.extract.base import ParameterisedSource, Source, SourceError
from pipeline.load.partition import partition_range
from pipeline.mapping.engine import Result
from pipeline.mapping.errors import MappingError
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.stream import map_stream, open_sources
from pipeline.runtime.watermarks import bound_params, text_watermark_problem
from pipeline.settings import Settings


def mapped_results(
    spec: MappingSpec, settings: Settings, *, since: str | None = None
) -> Generator[Result, None, None]:
    """Map the mapping's source without staging or sending (preview, mapping check); close the
    generator when stopping early, so the source's connection closes at once."""
    sources = open_sources(spec, erp_url=_erp_url(settings), settings=settings)
    return map_stream(spec, sources, {"since": since, "until": None})


def query_rounds(
    spec: MappingSpec,
    settings: Settings,
    now: datetime | None = None,
    sample: object = None,
) -> list[str]:
    """Run the mapping's queries once as an incremental run binds them (``:since``) and once as
    a backfill window does (``:since`` and ``:until``), reading one row each, so a query that only
    fails once a parameter has a value fails on day 1, not on night 2. Returns the rounds run
    (none for a source without parameters: CSV, JSON); raises the source's error, prefixed
    with the mapping file.

    ``sample``, a value of the watermark column read from the source, is checked first: a text
    column whose shape a bound timestamp does not compare with (``20240315093000``, or
    ``2024-03-15T09:30:00`` on SQLite, where a day would be lost) needs ``watermark_format``.
    """
    moment = (now or datetime.now(UTC)).replace(tzinfo=None)
    day = moment.date() - timedelta(days=1)
    window = partition_range(day, day, 1)[0]
    shape = spec.watermark_format
    rounds = {
        "an incremental run (:since bound)": bound_params(moment - timedelta(days=1), None, shape),
        "a backfill window (:since and :until bound)": bound_params(*window, shape),
    }
    url = _erp_url(settings)
    sources = [spec.open_source(erp_url=url, settings=settings)]
    sources.append(spec.open_lines_source(erp_url=url, settings=settings) or sources[0])
    tried = [s for s in dict.fromkeys(sources) if isinstance(s, ParameterisedSource)]
    for source in tried:
        _check_watermark_shape(spec, source, sample)
        for name, params in rounds.items():
            _probe(spec, source, params, name)
    return list(rounds) if tried else []


def _check_watermark_shape(spec: MappingSpec, source: ParameterisedSource, sample: object) -> None:
    column = spec.watermark_column
    if column is None or spec.watermark_format is not None:
        return
    if not {"since", "until"} & set(source.parameters()):
        return
    problem = text_watermark_problem(sample, source.backend, column)
    if problem is not None:
        raise MappingError(f"{spec.where(('watermark_column',))}: {problem}")


def _probe(spec: MappingSpec, source: Source, params: dict[str, object], name: str) -> None:
    assert isinstance(source, ParameterisedSource)
    try:
        source.probe(params, name)
    except SourceError as error:
        raise type(error)(f"{spec.file}: {error}") from None


def _erp_url(settings: Settings) -> str | None:
    erp = settings.erp_database_url
    return erp.get_secret_value() if erp is not None else None
