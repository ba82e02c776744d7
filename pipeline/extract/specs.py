"""The source part of a mapping file: one pydantic model per source kind (``kind:`` picks it).

These are the extract layer's configuration; :mod:`pipeline.mapping.spec` composes them into a
mapping (mapping → extract, never the reverse) and :mod:`pipeline.extract.registry` builds the
source each one names.
"""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

ChunkRows = Annotated[int, Field(ge=1, le=1_000_000, description="Rows per chunk read.")]


class SourceSpecModel(BaseModel):
    """Base of every source model: unknown keys are errors, values are immutable (as every
    mapping-file model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _encoding(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(
            f"unknown encoding {name!r} (utf-8, utf-8-sig, cp1252, latin-1 …)"
        ) from None
    return name


Encoding = Annotated[str, AfterValidator(_encoding), Field(description="Text encoding.")]


class SqlSourceSpec(SourceSpecModel):
    """Rows of a query file run on the ERP database."""

    kind: Literal["sql"]
    query: str = Field(min_length=1, description="Query file, e.g. sql/sample_erp/extract.sql.")
    url: str | None = Field(
        None, description="Database URL without password; default: the ERP_DATABASE_URL setting."
    )
    chunk_rows: ChunkRows = 20_000

    @field_validator("url")
    @classmethod
    def _no_password(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url).password:
            raise ValueError(
                "a URL with a password does not belong in a mapping file: "
                "remove `url:` and set ERP_DATABASE_URL instead"
            )
        return url

    def describe(self) -> str:
        """The query file."""
        return self.query


class CsvSourceSpec(SourceSpecModel):
    """CSV files: a path or a glob (files read in sorted order), every cell read as text."""

    kind: Literal["csv"]
    path: str = Field(min_length=1, description="File or glob, e.g. exports/ap_*.csv.")
    delimiter: str = Field(",", min_length=1, max_length=1)
    quotechar: str = Field('"', min_length=1, max_length=1)
    encoding: Encoding = "utf-8"
    chunk_rows: ChunkRows = 20_000

    def describe(self) -> str:
        """The path or glob."""
        return self.path


class JsonSourceSpec(SourceSpecModel):
    """A JSON document (``records``: dotted path to the list) or JSON Lines (``lines: true``)."""

    kind: Literal["json"]
    path: str = Field(min_length=1)
    records: str | None = Field(None, description="Dotted path to the records list, e.g. invoices.")
    lines: bool = Field(False, description="JSON Lines: one record per line.")
    explode: str | None = Field(
        None, description="A nested list giving one row per element (columns <list>.<key>)."
    )
    encoding: Encoding = "utf-8"
    chunk_rows: ChunkRows = 20_000

    def describe(self) -> str:
        """The file."""
        return self.path


class MerchantSourceSpec(SourceSpecModel):
    """Supplier invoices read from the merchant platform's ``GET /invoice`` (one row per item, the
    rows a JSON export of the same answer with ``explode: invoiceItems`` gives). No secrets here:
    tokens are MERCHANT_* settings, and MERCHANT_BASE_URL overrides ``base_url``."""

    kind: Literal["merchant"]
    base_url: str = Field(
        min_length=1, description="API root, e.g. https://api.merchantstack.com (no password)."
    )
    store_ids: list[int] = Field(default_factory=list, description="storeIds header; all if empty.")
    invoice_ids: list[int] = Field(default_factory=list, description="invoiceId header filter.")
    accept_version: str = Field("2", pattern=r"^[0-9]{1,3}$", description="x-accept-version.")
    token_url: str | None = Field(None, description="OAuth2 token URL; default <base>/oauth/token.")
    chunk_rows: ChunkRows = 20_000

    @field_validator("base_url", "token_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if urlsplit(url).password:
            raise ValueError(
                "a URL with a password does not belong in a mapping file: tokens are MERCHANT_* "
                "settings"
            )
        if not re.match(r"^https?://[^/\s@]+", url):
            raise ValueError(f"{url!r} is not an http(s) URL such as https://api.example.com")
        return url.rstrip("/")

    def describe(self) -> str:
        """The API root."""
        return self.base_url


AnySourceSpec = SqlSourceSpec | CsvSourceSpec | JsonSourceSpec | MerchantSourceSpec
SourceSpec = Annotated[AnySourceSpec, Field(discriminator="kind")]
"""A mapping file's ``source:`` / ``lines_source:``: the model its ``kind:`` names."""
