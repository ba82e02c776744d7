"""A mapping's own sources, opened and checked once, and the stream of invoices they give.

Every caller that maps a source (the sync job, ``preview`` and ``mapping check``, tests) goes
through these two functions: :func:`open_sources` opens the source and the lines source (through
the extract registry) and checks up front that every column the mapping names exists, so a
missing column stops the run before anything is sent; :func:`map_stream` maps their chunks and,
when closed early, closes the sources' cursors at once (not in a later garbage collection, when
the database connection may already be gone).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple, TypeVar

from pipeline.extract.base import Chunk, Source
from pipeline.mapping.engine import MappingEngine, Result, Streamed
from pipeline.mapping.skipping import AckedSources
from pipeline.mapping.spec import MappingSpec
from pipeline.settings import Settings

T = TypeVar("T")


class Sources(NamedTuple):
    """The mapping's source and its lines source (None when rows carry their lines)."""

    rows: Source
    lines: Source | None


def open_sources(
    spec: MappingSpec,
    *,
    base_dir: Path | None = None,
    erp_url: str | None = None,
    settings: Settings | None = None,
) -> Sources:
    """Open the mapping's source(s) and check every column it needs exists (nothing is read
    beyond what the check needs)."""
    rows = spec.open_source(base_dir, erp_url, settings=settings)
    lines = spec.open_lines_source(base_dir, erp_url, settings=settings)
    MappingEngine(spec).check_columns(
        rows.columns(),
        None if lines is None else lines.columns(),
        source=rows.describe(),
        lines_source="the lines source" if lines is None else lines.describe(),
    )
    return Sources(rows, lines)


def map_stream(
    spec: MappingSpec, sources: Sources, params: Mapping[str, object] | None = None
) -> Generator[Result, None, None]:
    """Every mapped or rejected invoice of ``sources``, in source order, ``params`` bound to the
    queries; closing the generator closes the sources' streams."""
    yield from _stream(
        sources, params, lambda chunks, lines: MappingEngine(spec).run(chunks, lines)
    )


def skipping_stream(
    spec: MappingSpec,
    sources: Sources,
    params: Mapping[str, object] | None,
    acked: AckedSources,
    *,
    record: bool = True,
) -> Generator[Streamed, None, None]:
    """:func:`map_stream`, but invoices whose source is unchanged since their acknowledged send
    come as :class:`~pipeline.mapping.results.UnchangedSource`, not mapped
    (:meth:`MappingEngine.run_skipping`)."""

    def run(chunks: Iterator[Chunk], lines: Iterator[Chunk] | None) -> Iterator[Streamed]:
        engine = MappingEngine(spec)
        return (
            engine.run(chunks, lines)
            if lines is not None
            else engine.run_skipping(chunks, acked, record=record)
        )

    yield from _stream(sources, params, run)


def _stream(
    sources: Sources,
    params: Mapping[str, object] | None,
    run: Callable[[Iterator[Chunk], Iterator[Chunk] | None], Iterator[T]],
) -> Generator[T, None, None]:
    bound = dict(params or {})
    chunks: Iterator[Chunk] = sources.rows.chunks(bound)
    line_chunks = None if sources.lines is None else sources.lines.chunks(bound)
    try:
        yield from run(chunks, line_chunks)
    finally:
        for stream in (chunks, line_chunks):
            close = getattr(stream, "close", None)
            if close is not None:
                close()
