"""The one table from a source spec's type to the constructor of its source (the Airbyte
declarative-CDK factory: the mapping file's models are checked first, then built here).

``open_source(spec, context)`` is how every caller gets a :class:`~pipeline.extract.base.Source`
from a ``source:`` / ``lines_source:`` spec. A new source kind is a spec model in
:mod:`pipeline.extract.specs` and one row in :data:`OPENERS`; nothing else dispatches on the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline.extract.base import Source, SourceConfigError
from pipeline.extract.csv import CsvSource
from pipeline.extract.json import JsonSource
from pipeline.extract.merchant_api import open_merchant_source
from pipeline.extract.specs import (
    AnySourceSpec,
    CsvSourceSpec,
    JsonSourceSpec,
    MerchantSourceSpec,
    SqlSourceSpec,
)
from pipeline.extract.sql import SqlSource
from pipeline.settings import Settings, get_settings


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a spec does not say and its source needs: where relative paths start, the ERP
    database URL (a setting: it may hold a password), settings for API credentials, and how
    messages name the spec."""

    base_dir: Path
    erp_url: str | None = None
    settings: Settings | None = None
    """Default: the process settings (read only when a source needs them)."""
    where: str = "source"
    """The spec's place in messages: ``mappings/ap.yaml:2 source``."""


def _sql(spec: SqlSourceSpec, context: SourceContext) -> Source:
    url = spec.url or context.erp_url
    if not url:
        raise SourceConfigError(
            f"{context.where}: no database URL: set ERP_DATABASE_URL (or `url:` without a password)"
        )
    return SqlSource(url, Path(spec.query), base_dir=context.base_dir, chunk_rows=spec.chunk_rows)


def _csv(spec: CsvSourceSpec, context: SourceContext) -> Source:
    return CsvSource(
        spec.path,
        base_dir=context.base_dir,
        delimiter=spec.delimiter,
        encoding=spec.encoding,
        quotechar=spec.quotechar,
        chunk_rows=spec.chunk_rows,
    )


def _json(spec: JsonSourceSpec, context: SourceContext) -> Source:
    return JsonSource(
        spec.path,
        base_dir=context.base_dir,
        records=spec.records,
        lines=spec.lines,
        explode=spec.explode,
        encoding=spec.encoding,
        chunk_rows=spec.chunk_rows,
    )


def _merchant(spec: MerchantSourceSpec, context: SourceContext) -> Source:
    return open_merchant_source(spec, context.settings or get_settings())


Opener = Callable[[Any, SourceContext], Source]
"""Builds the source of one spec type (typed ``Any``: each row of the table takes its own type)."""

OPENERS: Mapping[type[AnySourceSpec], Opener] = MappingProxyType(
    {
        SqlSourceSpec: _sql,
        CsvSourceSpec: _csv,
        JsonSourceSpec: _json,
        MerchantSourceSpec: _merchant,
    }
)
"""Spec model type → the constructor of its source."""


def open_source(spec: AnySourceSpec, context: SourceContext) -> Source:
    """The source ``spec`` names; nothing is read or connected until the source is used."""
    opener = OPENERS.get(type(spec))
    if opener is None:
        raise SourceConfigError(
            f"{context.where}: no source kind is registered for {type(spec).__name__}; add it "
            "to pipeline.extract.registry.OPENERS"
        )
    return opener(spec, context)
