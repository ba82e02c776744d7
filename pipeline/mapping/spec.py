"""The mapping-file format: a pydantic model (``extra="forbid"`` everywhere) of one mapping.

A mapping names its **source** (SQL query file, CSV files, JSON / JSON Lines export, the
merchant platform's API), the **invoice key**, how rows make invoices (one row per invoice line,
rows of an invoice contiguous; or a separate ``lines_source`` joined on the key, both listing
invoices in the same order), the **formats** values are read with, the ERP **status** columns,
the **watermark** column, and for every AppZen field under ``header:`` and ``invoice_lines:``
where its value comes from.

Relative paths (``sql/…``, ``samples/…``) resolve against the project directory: the ``base_dir``
given to :meth:`MappingSpec.open_source`, by default the mapping file's parent's parent.
"""

from __future__ import annotations

import codecs
import re
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, PrivateAttr, field_validator, model_validator

from pipeline.extract.base import Source
from pipeline.mapping.errors import MappingError
from pipeline.mapping.fields import HeaderFields, LineFields
from pipeline.mapping.leaves import ColumnName, Strict, ThousandsSeparator
from pipeline.mapping.names import ColumnCase
from pipeline.mapping.transforms import ISO, DateStyle, Formats, date_format_problem
from pipeline.settings import Settings, get_settings

if TYPE_CHECKING:
    HeaderSpec = Strict
    LineSpec = Strict
else:
    HeaderSpec = HeaderFields
    LineSpec = LineFields

ChunkRows = Annotated[int, Field(ge=1, le=1_000_000, description="Rows per chunk read.")]


def _encoding(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(
            f"unknown encoding {name!r} (utf-8, utf-8-sig, cp1252, latin-1 …)"
        ) from None
    return name


Encoding = Annotated[str, AfterValidator(_encoding), Field(description="Text encoding.")]


class SqlSourceSpec(Strict):
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


class CsvSourceSpec(Strict):
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


class JsonSourceSpec(Strict):
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


class MerchantSourceSpec(Strict):
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


SourceSpec = Annotated[
    SqlSourceSpec | CsvSourceSpec | JsonSourceSpec | MerchantSourceSpec,
    Field(discriminator="kind"),
]
AnySourceSpec = SqlSourceSpec | CsvSourceSpec | JsonSourceSpec | MerchantSourceSpec


class FormatsSpec(Strict):
    """How text values are read (a field may override each of these) and how dates go out."""

    decimal_separator: Literal[".", ","] = "."
    thousands_separator: ThousandsSeparator = ""
    date_formats: list[str] = Field(
        default_factory=lambda: [ISO], min_length=1, description="strptime formats or 'iso'."
    )
    datetime_formats: list[str] = Field(default_factory=lambda: [ISO], min_length=1)
    timezone: str = Field("UTC", description="IANA zone of naive datetimes, e.g. Europe/Berlin.")
    date_output: DateStyle = Field(
        "datetime",
        description="datetime: 2024-12-31T00:00:00Z (AppZen's examples); date: 2024-12-31",
    )

    @field_validator("date_formats", "datetime_formats", mode="before")
    @classmethod
    def _one_format(cls, formats: object) -> object:
        return [formats] if isinstance(formats, str) else formats

    @field_validator("date_formats", "datetime_formats")
    @classmethod
    def _formats(cls, formats: list[str]) -> list[str]:
        problems = [problem for fmt in formats if (problem := date_format_problem(fmt))]
        if problems:
            raise ValueError("; ".join(problems))
        return formats

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (e.g. UTC, Europe/Berlin)") from None
        return name

    @model_validator(mode="after")
    def _separators(self) -> Self:
        if self.decimal_separator == self.thousands_separator:
            raise ValueError("decimal_separator and thousands_separator must differ")
        return self

    def resolved(self) -> Formats:
        """These formats as the converters take them."""
        return Formats(
            decimal_separator=self.decimal_separator,
            thousands_separator=self.thousands_separator,
            date_formats=tuple(self.date_formats),
            datetime_formats=tuple(self.datetime_formats),
            zone=zoneinfo.ZoneInfo(self.timezone),
            date_style=self.date_output,
        )


class ErrorColumnsSpec(Strict):
    """ERP error columns: a non-blank ``message`` means the ERP failed to take the invoice."""

    message: ColumnName
    status: ColumnName | None = None
    exception: ColumnName | None = None


class StatusSpec(Strict):
    """The ERP-side status columns status-sync pushes to AppZen."""

    column: ColumnName
    error: ErrorColumnsSpec | None = None


class MappingSpec(Strict):
    """One mapping file: a source, how its rows make invoices, and where each AppZen field comes
    from. Rows of one invoice must be contiguous (SQL: ORDER BY the key)."""

    version: Literal[1] = Field(1, description="Version of this format.")
    name: str = Field(
        "mapping", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Default: the file's name."
    )
    description: str | None = None
    source: SourceSpec
    lines_source: SourceSpec | None = Field(
        None, description="Separate line rows joined on the key; both sources in the same order."
    )
    invoice_key: ColumnName = Field(description="The invoice key column (becomes invoice_id).")
    lines_key: ColumnName | None = Field(None, description="Key column of lines_source.")
    watermark_column: ColumnName | None = Field(
        None, description="Its maximum over a successful run is bound as :since next time."
    )
    status: StatusSpec | None = None
    column_case: ColumnCase = Field(
        "exact",
        description="insensitive: a column this file names matches the source column of any "
        "case (drivers and exports differ: INVOICE_NUM, invoice_num, InvoiceNum).",
    )
    formats: FormatsSpec = Field(default_factory=FormatsSpec)
    max_lines_per_invoice: int = Field(10_000, ge=1, le=1_000_000)
    header: HeaderSpec
    invoice_lines: LineSpec

    _file: str = PrivateAttr(default="<mapping>")
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)
    _project_dir: Path = PrivateAttr(default_factory=Path)

    @model_validator(mode="after")
    def _lines_key_needs_lines_source(self) -> Self:
        if self.lines_key is not None and self.lines_source is None:
            raise ValueError("lines_key applies only with a lines_source")
        return self

    def bind_file(self, shown: str, lines: dict[tuple[str | int, ...], int], project: Path) -> None:
        """Remember where this spec was read from (for file:line messages and relative paths)."""
        self._file = shown
        self._lines = lines
        self._project_dir = project

    @property
    def file(self) -> str:
        """The mapping file as named in messages."""
        return self._file

    @property
    def watermark(self) -> str | None:
        """Alias of :attr:`watermark_column`."""
        return self.watermark_column

    @property
    def line_key(self) -> str:
        """The key column of the lines source (the invoice key unless ``lines_key`` says)."""
        return self.lines_key or self.invoice_key

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """The line of a key path in the file (of its nearest ancestor that has one; else 1)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return 1

    def where(self, path: tuple[str | int, ...]) -> str:
        """``mappings/x.yaml:12 header.supplier_id.column`` for a key path of this file."""
        dotted = ".".join(str(part) for part in path)
        line = self.line_of(path)
        return f"{self._file}:{line} {dotted}" if dotted else f"{self._file}:{line}"

    def open_source(
        self,
        base_dir: Path | None = None,
        erp_url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> Source:
        """The source of the rows (of the headers, with a ``lines_source``); ``settings`` give a
        merchant source its credentials (default: the process settings)."""
        return _open(self, self.source, ("source",), base_dir, erp_url, settings)

    def open_lines_source(
        self,
        base_dir: Path | None = None,
        erp_url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> Source | None:
        """The lines source, or None when rows carry their lines."""
        if self.lines_source is None:
            return None
        return _open(self, self.lines_source, ("lines_source",), base_dir, erp_url, settings)


def _open(  # noqa: PLR0917 - one internal call site per source role
    spec: MappingSpec,
    source: AnySourceSpec,
    path: tuple[str, ...],
    base_dir: Path | None,
    erp_url: str | None,
    settings: Settings | None,
) -> Source:
    base = Path(base_dir) if base_dir is not None else spec._project_dir
    if isinstance(source, MerchantSourceSpec):
        from pipeline.extract.merchant_api import open_merchant_source  # noqa: PLC0415

        return open_merchant_source(source, settings or get_settings())
    if isinstance(source, SqlSourceSpec):
        from pipeline.extract.sql import SqlSource  # noqa: PLC0415 - sources load on demand

        url = source.url or erp_url
        if not url:
            raise MappingError(
                f"{spec.where(path)}: no database URL: set ERP_DATABASE_URL (or `url:` without "
                "a password)"
            )
        return SqlSource(url, Path(source.query), base_dir=base, chunk_rows=source.chunk_rows)
    if isinstance(source, CsvSourceSpec):
        from pipeline.extract.csv import CsvSource  # noqa: PLC0415

        return CsvSource(
            source.path,
            base_dir=base,
            delimiter=source.delimiter,
            encoding=source.encoding,
            quotechar=source.quotechar,
            chunk_rows=source.chunk_rows,
        )
    from pipeline.extract.json import JsonSource  # noqa: PLC0415

    return JsonSource(
        source.path,
        base_dir=base,
        records=source.records,
        lines=source.lines,
        explode=source.explode,
        encoding=source.encoding,
        chunk_rows=source.chunk_rows,
    )


KeyPath = tuple[str | int, ...]


def iter_paths(spec: object, path: KeyPath = ()) -> Iterator[tuple[KeyPath, object]]:
    """Every (key path, value) of a validated spec tree, depth first, set fields only."""
    yield path, spec
    if isinstance(spec, Strict):
        for name in type(spec).model_fields:
            if name in spec.model_fields_set:
                yield from iter_paths(getattr(spec, name), (*path, name))
    elif isinstance(spec, list):
        for index, item in enumerate(spec):
            yield from iter_paths(item, (*path, index))
    elif isinstance(spec, dict):
        for key, item in spec.items():
            yield from iter_paths(item, (*path, key))


_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def default_name(path: Path) -> str:
    """A mapping's default name: its file name without extension, made safe."""
    return _NAME.sub("_", path.stem)[:64] or "mapping"
